package site

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/measure"
)

// fakeCollector serves the census endpoints from memory: one round, and
// the replies each site reported.
type fakeCollector struct {
	mu       sync.Mutex
	round    measure.CensusRound
	bySite   map[string]string // agent id -> site
	replies  map[string][]measure.CensusReply
	failures int  // uploads to answer 503 before accepting
	hidden   bool // the schedule does not list the round (yet)
	addr4    string
	addr6    string
	maxPPS   int
	enrolls  int
}

func newFakeCollector(t *testing.T, r measure.CensusRound) (*fakeCollector, string) {
	f := &fakeCollector{round: r, bySite: map[string]string{}, replies: map[string][]measure.CensusReply{},
		addr4: "198.18.53.53", addr6: "2001:db8:53::53", maxPPS: 1000}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+measure.PathCensusEnroll, func(w http.ResponseWriter, r *http.Request) {
		var req measure.EnrollRequest
		json.NewDecoder(r.Body).Decode(&req)
		site, ok := strings.CutPrefix(req.Token, "acs_")
		if !ok {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.enrolls++
		f.bySite["p-"+site] = site
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(measure.EnrollResponse{Probe: "p-" + site})
	})
	mux.HandleFunc("GET "+measure.PathCensus, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		site := f.bySite[r.Header.Get(measure.HeaderProbe)]
		rd := f.round
		rd.SiteKey = census.SiteKey(rd.Secret)
		if rd.Sender != site {
			rd.Secret = nil // as the collector: only the sender gets it
		}
		rounds := []measure.CensusRound{rd}
		if f.hidden {
			rounds = nil
		}
		json.NewEncoder(w).Encode(measure.CensusSchedule{Target: "lab", Site: site,
			Addr4: f.addr4, Addr6: f.addr6, MaxPPS: f.maxPPS, RefreshSec: 1, Rounds: rounds})
	})
	mux.HandleFunc("POST "+measure.PathCensusReplies, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.failures > 0 {
			f.failures--
			http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		site := f.bySite[r.Header.Get(measure.HeaderProbe)]
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("gzip: %v", err)
				return
			}
			rd = zr
		}
		body, _ := io.ReadAll(rd)
		var ur measure.UploadResponse
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			var rep measure.CensusReply
			if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
				t.Errorf("upload line %q: %v", sc.Bytes(), err)
				continue
			}
			// As the collector: the sender's MAC must hold.
			mac, err := hex.DecodeString(rep.MAC)
			if err == nil {
				err = census.CheckMAC(f.round.Secret, census.Tag{Kind: census.KindICMP, Round: rep.Round, Sent: rep.Sent,
					Dst: netip.MustParseAddr(rep.Addr)}, mac)
			}
			if err != nil {
				t.Errorf("reply %+v: %v", rep, err)
				continue
			}
			f.replies[site] = append(f.replies[site], rep)
			ur.Accepted++
		}
		json.NewEncoder(w).Encode(ur)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeCollector) got() map[string][]measure.CensusReply {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]measure.CensusReply{}
	for k, v := range f.replies {
		out[k] = append([]measure.CensusReply(nil), v...)
	}
	return out
}

// fakeNet routes echo requests to the hosts of a hitlist and their
// replies, by BGP as the test defines it, to one site's conn.
type fakeNet struct {
	mu      sync.Mutex
	catch   map[netip.Addr]string // replying address -> site that receives its reply
	conns   map[string]map[bool]*fakeConn
	sentTo  []netip.Addr
	sendErr map[netip.Addr]bool
}

func (n *fakeNet) listen(site string) func(netip.Addr) (conn, error) {
	return func(a netip.Addr) (conn, error) {
		c := &fakeConn{net: n, v6: a.Is6(), in: make(chan packet, 100), closed: make(chan struct{})}
		n.mu.Lock()
		if n.conns[site] == nil {
			n.conns[site] = map[bool]*fakeConn{}
		}
		n.conns[site][a.Is6()] = c
		n.mu.Unlock()
		return c, nil
	}
}

type packet struct {
	b    []byte
	from netip.Addr
}

type fakeConn struct {
	net       *fakeNet
	v6        bool
	in        chan packet
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *fakeConn) WriteTo(b []byte, dst netip.Addr) error {
	n := c.net
	n.mu.Lock()
	n.sentTo = append(n.sentTo, dst)
	site, ok := n.catch[dst]
	to := n.conns[site][c.v6]
	n.mu.Unlock()
	if !ok || to == nil {
		return nil // silent network
	}
	reply := bytes.Clone(b)
	reply[0] = 0 // echo reply
	if c.v6 {
		reply[0] = 129
	}
	to.deliver(packet{reply, dst})
	return nil
}

func (c *fakeConn) deliver(p packet) {
	select {
	case c.in <- p:
	case <-c.closed:
	}
}

func (c *fakeConn) ReadFrom(b []byte) (int, netip.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p.from, nil
	case <-c.closed:
		return 0, netip.Addr{}, os.ErrClosed
	}
}

func (c *fakeConn) SetReadDeadline(time.Time) error { return nil }
func (c *fakeConn) Close() error                    { c.closeOnce.Do(func() { close(c.closed) }); return nil }

var quiet = slog.New(slog.DiscardHandler)

func startAgent(t *testing.T, ctx context.Context, cfg Config) chan error {
	t.Helper()
	cfg.Logger = quiet
	cfg.UploadEvery = 100 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	return done
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRoundTwoSites(t *testing.T) {
	now := time.Now()
	secret := []byte("0123456789abcdef")
	round := measure.CensusRound{ID: 7, Sender: "ams", Hitlist: "lab.txt", RatePPS: 50, Prefix4: 24, Prefix6: 64,
		Secret: secret, Start: now.Add(-time.Second), Closes: now.Add(time.Minute), LateUntil: now.Add(time.Hour)}
	fc, url := newFakeCollector(t, round)
	a := netip.MustParseAddr
	n := &fakeNet{conns: map[string]map[bool]*fakeConn{}, catch: map[netip.Addr]string{
		a("198.18.128.2"): "ams", a("198.18.129.2"): "ams", a("198.18.131.2"): "fra", a("198.18.132.2"): "fra",
		a("198.18.133.2"): "fra", a("2001:db8:c1:1::2"): "ams", a("2001:db8:c1:2::2"): "fra",
		a("198.18.130.2"): "fra", // opted out: must never be probed
	}}
	dir := t.TempDir()
	hit := "# the lab\n198.18.128.2\n198.18.128.77\n198.18.129.2\n198.18.130.2\n198.18.131.2\n198.18.132.2\n198.18.133.2\n198.18.134.2\n2001:db8:c1:1::2\n2001:db8:c1:2::2\n"
	os.MkdirAll(filepath.Join(dir, "hitlists"), 0o755)
	os.WriteFile(filepath.Join(dir, "hitlists", "lab.txt"), []byte(hit), 0o644)
	os.WriteFile(filepath.Join(dir, "optout"), []byte("198.18.130.0/24\n"), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	var dones []chan error
	for _, site := range []string{"ams", "fra"} {
		cfg := Config{Collector: url, StateDir: filepath.Join(dir, site), EnrollToken: "acs_" + site,
			HitlistDir: filepath.Join(dir, "hitlists"), OptOut: filepath.Join(dir, "optout"), MaxPPS: 1000}
		cfg.listen = n.listen(site)
		dones = append(dones, startAgent(t, ctx, cfg))
	}
	// 7 responsive networks answer; 198.18.134.2 is silent.
	waitFor(t, "replies from 7 networks", 20*time.Second, func() bool {
		g := fc.got()
		return len(g["ams"])+len(g["fra"]) >= 7
	})
	cancel()
	for _, d := range dones {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	got := fc.got()
	for site, reps := range got {
		for _, r := range reps {
			if want := n.catch[a(r.Addr)]; want != site {
				t.Errorf("%s reported by %s, its reply goes to %s", r.Addr, site, want)
			}
			if (r.RTTMS != nil) != (site == "ams") || r.Round != 7 {
				t.Errorf("%s at %s: rtt %v round %d (only the sender measures RTT)", r.Addr, site, r.RTTMS, r.Round)
			}
		}
	}
	if len(got["ams"]) != 3 || len(got["fra"]) != 4 {
		t.Errorf("ams %d, fra %d replies; want 3 and 4", len(got["ams"]), len(got["fra"]))
	}
	for _, d := range n.sentTo {
		if d == a("198.18.130.2") || d == a("198.18.128.77") {
			t.Errorf("probed %s (opted out or a second address in a /24)", d)
		}
	}
	if len(n.sentTo) != 8 {
		t.Errorf("sent %d probes, want 8 (one per listed network)", len(n.sentTo))
	}
	var st RoundStats
	b, err := os.ReadFile(filepath.Join(dir, "ams", "rounds", "7.json"))
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("round record: %v %s", err, b)
	}
	t.Logf("round record: %s", b)
	if st.Sent != 8 || st.OptedOut != 1 || st.Duplicates != 1 || st.ConfiguredPPS != 50 || st.MeasuredPPS > 50 || st.MeasuredPPS < 20 {
		t.Errorf("round stats %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "fra", "rounds", "7.json")); err == nil {
		t.Error("fra, not the sender, recorded a sent round")
	}
}

// TestLateRepliesSurviveRestart: replies captured after the round closed
// are still reported, and replies spooled while the collector is down are
// not lost when the agent restarts.
func TestLateRepliesSurviveRestart(t *testing.T) {
	now := time.Now()
	secret := []byte("fedcba9876543210")
	round := measure.CensusRound{ID: 9, Sender: "ams", Hitlist: "x", RatePPS: 10, Prefix4: 24, Prefix6: 48,
		Secret: secret, Start: now.Add(-time.Minute), Closes: now.Add(-time.Second), LateUntil: now.Add(time.Hour)}
	fc, url := newFakeCollector(t, round)
	fc.failures = 1 << 30 // the collector is down
	n := &fakeNet{conns: map[string]map[bool]*fakeConn{}, catch: map[netip.Addr]string{}}
	dir := t.TempDir()
	cfg := Config{Collector: url, StateDir: dir, EnrollToken: "acs_fra"}
	cfg.listen = n.listen("fra")
	ctx, cancel := context.WithCancel(context.Background())
	done := startAgent(t, ctx, cfg)
	waitFor(t, "the capture socket", 10*time.Second, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.conns["fra"][false] != nil
	})
	var want []string
	for i := range 20 {
		dst := netip.AddrFrom4([4]byte{198, 18, byte(128 + i), 2})
		pkt, _ := echoRequest(false, 1, i, census.Payload(secret, census.SiteKey(secret), census.Probe{Round: 9, Sent: now.Add(-2 * time.Second)}, dst, ""))
		pkt[0] = 0
		n.mu.Lock()
		c := n.conns["fra"][false]
		n.mu.Unlock()
		c.deliver(packet{pkt, dst})
		want = append(want, dst.String())
	}
	// A forged reply (wrong source for its MAC) and another round's are
	// dropped.
	pkt, _ := echoRequest(false, 1, 99, census.Payload(secret, census.SiteKey(secret), census.Probe{Round: 9, Sent: now}, netip.MustParseAddr("198.18.200.2"), ""))
	pkt[0] = 0
	n.conns["fra"][false].deliver(packet{pkt, netip.MustParseAddr("198.18.201.2")})
	pkt, _ = echoRequest(false, 1, 98, census.Payload(secret, census.SiteKey(secret), census.Probe{Round: 10, Sent: now}, netip.MustParseAddr("198.18.202.2"), ""))
	pkt[0] = 0
	n.conns["fra"][false].deliver(packet{pkt, netip.MustParseAddr("198.18.202.2")})

	time.Sleep(600 * time.Millisecond) // past the spooler's 200 ms batch
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g := fc.got(); len(g["fra"]) != 0 {
		t.Fatalf("collector down, yet it has %d replies", len(g["fra"]))
	}
	fc.mu.Lock()
	fc.failures = 0
	fc.mu.Unlock()
	// Restart: no token needed any more, the identity is on disk.
	cfg.EnrollToken = ""
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = startAgent(t, ctx, cfg)
	waitFor(t, "the spooled replies", 10*time.Second, func() bool { return len(fc.got()["fra"]) >= 20 })
	cancel()
	<-done
	got := fc.got()["fra"]
	var addrs []string
	for _, r := range got {
		addrs = append(addrs, r.Addr)
		if !r.Received.After(round.Closes) || r.RTTMS != nil {
			t.Errorf("reply %+v: want received after close, no RTT", r)
		}
	}
	if strings.Join(addrs, " ") != strings.Join(want, " ") {
		t.Errorf("after restart got %v, want %v", addrs, want)
	}
	if fc.enrolls != 1 {
		t.Errorf("enrolled %d times, want once", fc.enrolls)
	}
}

func FuzzParseEchoReply(f *testing.F) {
	f.Add(false, []byte{0, 0, 0, 0, 0, 1, 0, 1, 'A', 'C'}) // IPv4 echo reply
	f.Add(true, []byte{129, 0, 0, 0, 0, 1, 0, 1})          // IPv6 echo reply, empty payload
	f.Add(false, []byte{8, 0})                             // truncated echo request
	f.Fuzz(func(t *testing.T, v6 bool, b []byte) {
		p, ok := parseEchoReply(v6, b)
		if ok && (len(b) < 8 || len(p) != len(b)-8) {
			t.Fatalf("accepted %x", b)
		}
		if ok {
			census.ParseHeader(p) // must not panic on any payload
		}
	})
}

// TestReplyBeforeRoundKnown: a reply that arrives before this site has
// seen its round in the schedule (the sender polled first) is kept and
// reported once the round appears.
func TestReplyBeforeRoundKnown(t *testing.T) {
	now := time.Now()
	secret := []byte("0123456789abcdef")
	round := measure.CensusRound{ID: 11, Sender: "ams", Hitlist: "x", RatePPS: 10, Prefix4: 24, Prefix6: 48,
		Secret: secret, Start: now, Closes: now.Add(time.Minute), LateUntil: now.Add(time.Hour)}
	fc, url := newFakeCollector(t, round)
	fc.hidden = true
	n := &fakeNet{conns: map[string]map[bool]*fakeConn{}, catch: map[netip.Addr]string{}}
	cfg := Config{Collector: url, StateDir: t.TempDir(), EnrollToken: "acs_fra"}
	cfg.listen = n.listen("fra")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startAgent(t, ctx, cfg)
	waitFor(t, "the capture socket", 10*time.Second, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.conns["fra"][true] != nil
	})
	dst := netip.MustParseAddr("2001:db8:c1:3::2")
	pkt, _ := echoRequest(true, 1, 1, census.Payload(secret, census.SiteKey(secret), census.Probe{Round: 11, Sent: now}, dst, ""))
	pkt[0] = 129
	n.mu.Lock()
	c := n.conns["fra"][true]
	n.mu.Unlock()
	c.deliver(packet{pkt, dst})
	time.Sleep(300 * time.Millisecond)
	if len(fc.got()["fra"]) != 0 {
		t.Fatal("reported a reply of a round not in the schedule")
	}
	fc.mu.Lock()
	fc.hidden = false
	fc.mu.Unlock()
	waitFor(t, "the held reply", 10*time.Second, func() bool { return len(fc.got()["fra"]) == 1 })
	cancel()
	<-done
	if r := fc.got()["fra"][0]; r.Addr != dst.String() || r.Round != 11 {
		t.Errorf("reply %+v", r)
	}
}
