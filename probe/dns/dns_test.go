package dns

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/anycatch/anycatch/internal/dnstest"
	"github.com/anycatch/anycatch/measure"
)

// TestMain fails the run when a goroutine of this package or of miekg/dns
// outlives the tests (dnstest servers are shut down by their cleanups).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(2 * time.Second); leaked != "" {
			os.Stderr.WriteString("goroutine leak:\n" + leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitForLeaks(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "TestMain") || strings.Contains(g, "waitForLeaks") {
				continue
			}
			if strings.Contains(g, "anycatch/probe/dns.") || strings.Contains(g, "miekg/dns.") ||
				strings.Contains(g, "anycatch/internal/dnstest.") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func boolp(b bool) *bool { return &b }

// fast is a spec that keeps failing tests short.
func fast(s measure.DNSSpec) measure.DNSSpec {
	if s.TimeoutMS == 0 {
		s.TimeoutMS = 300
	}
	return s
}

func ask(t *testing.T, srv netip.AddrPort, spec measure.DNSSpec) measure.DNSExchange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Query(ctx, srv, fast(spec), Options{})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if len(res.Exchanges) != 1 {
		t.Fatalf("got %d exchanges, want 1", len(res.Exchanges))
	}
	if res.Server != srv.String() {
		t.Errorf("server = %q, want %q", res.Server, srv)
	}
	return res.Exchanges[0]
}

func TestQueryChaosNSID(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "v4"
		if v6 {
			name = "v6"
		}
		t.Run(name, func(t *testing.T) {
			srv := dnstest.Start(t, dnstest.Config{IPv6: v6})
			ex := ask(t, srv, measure.DNSSpec{})
			if ex.Error != "" {
				t.Fatalf("error = %q", ex.Error)
			}
			if ex.QName != "hostname.bind." || ex.QClass != "CH" || ex.QType != "TXT" || ex.Proto != "udp" {
				t.Errorf("question = %s %s %s over %s", ex.QName, ex.QClass, ex.QType, ex.Proto)
			}
			if ex.Tries != 1 || ex.TCPFallback {
				t.Errorf("tries = %d, fallback = %v; want 1, false", ex.Tries, ex.TCPFallback)
			}
			if ex.Rcode != "NOERROR" || strings.Join(ex.Flags, " ") != "qr aa" {
				t.Errorf("rcode %s flags %v, want NOERROR [qr aa]", ex.Rcode, ex.Flags)
			}
			want := measure.RR{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: dnstest.DefaultHostname}
			if len(ex.Answers) != 1 || ex.Answers[0] != want {
				t.Errorf("answers = %+v, want [%+v]", ex.Answers, want)
			}
			if ex.NSID != dnstest.DefaultNSID || ex.NSIDHex != hex.EncodeToString([]byte(dnstest.DefaultNSID)) {
				t.Errorf("nsid = %q (%s)", ex.NSID, ex.NSIDHex)
			}
			if ex.RTT <= 0 || ex.RTT > 1000 {
				t.Errorf("rtt = %v ms", ex.RTT)
			}
			var m mdns.Msg
			if err := m.Unpack(ex.Raw); err != nil || len(m.Answer) != 1 {
				t.Errorf("raw reply does not round-trip: %v", err)
			}
		})
	}
}

func TestQueryIN(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Config{Records: []string{
		"www.example.test. 300 IN A 198.51.100.1",
		`txt.example.test. 60 IN TXT "v=spf1" " -all" "semi\;colon"`,
	}})
	tests := []struct {
		name, qname, qtype string
		rcode              string
		data               []string
	}{
		{"a", "www.example.test", "A", "NOERROR", []string{"198.51.100.1"}},
		{"lowercase type", "WWW.example.test.", "a", "NOERROR", []string{"198.51.100.1"}},
		{"txt joined", "txt.example.test.", "TXT", "NOERROR", []string{"v=spf1 -allsemi;colon"}},
		{"nodata", "www.example.test.", "AAAA", "NOERROR", nil},
		{"nxdomain", "nope.example.test.", "A", "NXDOMAIN", nil},
		{"generic type", "www.example.test.", "TYPE1", "NOERROR", []string{"198.51.100.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := ask(t, srv, measure.DNSSpec{QName: tc.qname, QClass: "IN", QType: tc.qtype, NSID: boolp(false), Recurse: true})
			if ex.Error != "" || ex.Rcode != tc.rcode {
				t.Fatalf("rcode %q error %q, want %s", ex.Rcode, ex.Error, tc.rcode)
			}
			var got []string
			for _, a := range ex.Answers {
				got = append(got, a.Data)
			}
			if strings.Join(got, "|") != strings.Join(tc.data, "|") {
				t.Errorf("answers = %q, want %q", got, tc.data)
			}
			if ex.NSID != "" {
				t.Errorf("nsid %q without asking", ex.NSID)
			}
			if !strings.Contains(strings.Join(ex.Flags, " "), "rd") {
				t.Errorf("flags %v: want rd echoed", ex.Flags)
			}
		})
	}
}

func TestTCPFallbackAndTCP(t *testing.T) {
	s := dnstest.StartServer(t, dnstest.Config{TruncateUDP: true})
	ex := ask(t, s.Addr, measure.DNSSpec{})
	if !ex.TCPFallback || ex.Proto != "tcp" || ex.Tries != 2 {
		t.Errorf("fallback %v proto %s tries %d; want true tcp 2", ex.TCPFallback, ex.Proto, ex.Tries)
	}
	if ex.Error != "" || len(ex.Answers) != 1 || ex.NSID != dnstest.DefaultNSID {
		t.Errorf("error %q answers %v nsid %q", ex.Error, ex.Answers, ex.NSID)
	}
	if _, udp, tcp := s.Queries(); udp != 1 || tcp != 1 {
		t.Errorf("server saw %d udp, %d tcp; want 1, 1", udp, tcp)
	}

	ex = ask(t, s.Addr, measure.DNSSpec{Proto: "tcp"})
	if ex.TCPFallback || ex.Proto != "tcp" || ex.Tries != 1 || ex.Error != "" || len(ex.Answers) != 1 {
		t.Errorf("tcp: %+v", ex)
	}
}

func TestTimeoutsAndRetries(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		s := dnstest.StartServer(t, dnstest.Config{DropFirst: 1000})
		start := time.Now()
		ex := ask(t, s.Addr, measure.DNSSpec{TimeoutMS: 200, Retries: 2})
		if ex.Error != ErrTimeout || ex.Tries != 3 || ex.Raw != nil {
			t.Errorf("error %q tries %d raw %d bytes; want timeout, 3, none", ex.Error, ex.Tries, len(ex.Raw))
		}
		if d := time.Since(start); d < 550*time.Millisecond || d > 2*time.Second {
			t.Errorf("took %v, want about 600ms", d)
		}
	})
	t.Run("retry answers", func(t *testing.T) {
		s := dnstest.StartServer(t, dnstest.Config{DropFirst: 1})
		ex := ask(t, s.Addr, measure.DNSSpec{TimeoutMS: 200, Retries: 2})
		if ex.Error != "" || ex.Tries != 2 || len(ex.Answers) != 1 {
			t.Errorf("error %q tries %d answers %d; want none, 2, 1", ex.Error, ex.Tries, len(ex.Answers))
		}
		if ex.RTT > 150 {
			t.Errorf("rtt %v ms: timed from the first try, want from the second", ex.RTT)
		}
	})
	t.Run("late reply to first try", func(t *testing.T) {
		// Every reply takes 300ms, tries time out after 200ms: the reply to
		// try 1 arrives during try 2 and must be accepted, timed from try 1.
		s := dnstest.StartServer(t, dnstest.Config{Delay: 300 * time.Millisecond})
		ex := ask(t, s.Addr, measure.DNSSpec{TimeoutMS: 200, Retries: 1})
		if ex.Error != "" || ex.Tries != 2 {
			t.Fatalf("error %q tries %d", ex.Error, ex.Tries)
		}
		if ex.RTT < 290 {
			t.Errorf("rtt %v ms, want ≥ 300 (timed from try 1)", ex.RTT)
		}
	})
	t.Run("tcp timeout", func(t *testing.T) {
		s := dnstest.StartServer(t, dnstest.Config{DropFirst: 1000})
		ex := ask(t, s.Addr, measure.DNSSpec{Proto: "tcp", TimeoutMS: 200})
		if ex.Error != ErrTimeout || ex.Tries != 1 {
			t.Errorf("error %q tries %d", ex.Error, ex.Tries)
		}
	})
}

func TestBadReplies(t *testing.T) {
	wrongQ := func(q []byte, proto string) []byte {
		var m mdns.Msg
		m.Unpack(q)
		r := new(mdns.Msg)
		r.SetReply(&m)
		r.Question[0].Name = "evil.example."
		b, _ := r.Pack()
		return b
	}
	tests := []struct {
		name    string
		cfg     dnstest.Config
		spec    measure.DNSSpec
		prefix  string
		wantRaw bool
	}{
		{"garbage", dnstest.Config{Garbage: true}, measure.DNSSpec{}, "malformed reply: ", true},
		{"garbage tcp", dnstest.Config{Garbage: true}, measure.DNSSpec{Proto: "tcp"}, "malformed reply: ", true},
		{"wrong id", dnstest.Config{WrongID: true}, measure.DNSSpec{}, ErrIDMismatch, true},
		{"wrong id tcp", dnstest.Config{WrongID: true}, measure.DNSSpec{Proto: "tcp"}, ErrIDMismatch, true},
		{"wrong question", dnstest.Config{Reply: wrongQ}, measure.DNSSpec{}, ErrQuestion, true},
		{"short", dnstest.Config{Reply: func([]byte, string) []byte { return []byte{1, 2, 3} }}, measure.DNSSpec{}, "malformed reply: short header (3 bytes)", true},
		{"empty tcp frame", dnstest.Config{Reply: func([]byte, string) []byte { return []byte{} }}, measure.DNSSpec{Proto: "tcp"}, "malformed reply: short header (0 bytes)", false},
		{"query echoed", dnstest.Config{Reply: func(q []byte, _ string) []byte { return q }}, measure.DNSSpec{}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := dnstest.Start(t, tc.cfg)
			ex := ask(t, srv, tc.spec)
			if !strings.HasPrefix(ex.Error, tc.prefix) || ex.Error == "" {
				t.Errorf("error = %q, want prefix %q", ex.Error, tc.prefix)
			}
			if (len(ex.Raw) > 0) != tc.wantRaw {
				t.Errorf("raw = %x, want raw %v", ex.Raw, tc.wantRaw)
			}
			if ex.Answers != nil || ex.Rcode != "" {
				t.Errorf("bad reply decoded: rcode %q answers %v", ex.Rcode, ex.Answers)
			}
		})
	}
}

// TestSpoofedThenGood sends a wrong-id reply, a runt and a wrong-question
// reply before the real one: the engine must ignore the first three and
// accept the fourth within one try.
func TestSpoofedThenGood(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		pc.SetDeadline(time.Now().Add(5 * time.Second))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var q mdns.Msg
		if q.Unpack(buf[:n]) != nil {
			return
		}
		r := new(mdns.Msg)
		r.SetReply(&q)
		r.Answer = []mdns.RR{&mdns.TXT{Hdr: mdns.RR_Header{Name: "hostname.bind.", Rrtype: mdns.TypeTXT, Class: mdns.ClassCHAOS}, Txt: []string{"real"}}}
		good, _ := r.Pack()
		spoof := append([]byte(nil), good...)
		binary.BigEndian.PutUint16(spoof, q.Id+1)
		wq := r.Copy()
		wq.Question[0].Qtype = mdns.TypeA
		wrong, _ := wq.Pack()
		for _, b := range [][]byte{spoof, {0xde, 0xad}, wrong, good} {
			pc.WriteTo(b, from)
		}
	}()
	ex := ask(t, pc.LocalAddr().(*net.UDPAddr).AddrPort(), measure.DNSSpec{TimeoutMS: 2000})
	<-done
	if ex.Error != "" || len(ex.Answers) != 1 || ex.Answers[0].Data != "real" || ex.Tries != 1 {
		t.Errorf("got %+v, want the real answer in one try", ex)
	}
	if ex.RTT > 1000 {
		t.Errorf("rtt %v ms: waited for the deadline instead of the good reply", ex.RTT)
	}
}

func TestRefusedAndUnreachable(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Config{HideIdentity: true})
	ex := ask(t, srv, measure.DNSSpec{})
	if ex.Error != "" || ex.Rcode != "REFUSED" || ex.NSID != "" {
		t.Errorf("hidden: error %q rcode %q nsid %q; want REFUSED without nsid", ex.Error, ex.Rcode, ex.NSID)
	}

	// A loopback port nobody listens on: ICMP port unreachable / RST.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	for _, proto := range []string{"udp", "tcp"} {
		ex := ask(t, closed, measure.DNSSpec{Proto: proto})
		if ex.Error != ErrRefused {
			t.Errorf("%s to closed port: error %q, want %q", proto, ex.Error, ErrRefused)
		}
	}
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		name string
		cfg  dnstest.Config
		spec measure.DNSSpec
		want measure.Identity
	}{
		{"all", dnstest.Config{}, measure.DNSSpec{}, measure.Identity{HostnameBind: dnstest.DefaultHostname, IDServer: dnstest.DefaultIDServer, NSID: dnstest.DefaultNSID}},
		{"no nsid asked", dnstest.Config{}, measure.DNSSpec{NSID: boolp(false)}, measure.Identity{HostnameBind: dnstest.DefaultHostname, IDServer: dnstest.DefaultIDServer}},
		{"hidden", dnstest.Config{HideIdentity: true}, measure.DNSSpec{}, measure.Identity{}},
		{"nsid only", dnstest.Config{NSIDOnly: true, NSID: "fra\x01"}, measure.DNSSpec{}, measure.Identity{NSID: `fra\x01`}},
		{"tcp fallback", dnstest.Config{TruncateUDP: true, Hostname: "h", IDServer: "i", NSID: "n"}, measure.DNSSpec{}, measure.Identity{HostnameBind: "h", IDServer: "i", NSID: "n"}},
		{"spec name ignored", dnstest.Config{}, measure.DNSSpec{QName: "version.bind.", QClass: "IN", QType: "A"}, measure.Identity{HostnameBind: dnstest.DefaultHostname, IDServer: dnstest.DefaultIDServer, NSID: dnstest.DefaultNSID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := dnstest.Start(t, tc.cfg)
			res, err := Identity(context.Background(), srv, fast(tc.spec), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Identity == nil || *res.Identity != tc.want {
				t.Errorf("identity = %+v, want %+v", res.Identity, tc.want)
			}
			if len(res.Exchanges) != 2 || res.Exchanges[0].QName != "hostname.bind." || res.Exchanges[1].QName != "id.server." {
				t.Fatalf("exchanges = %+v", res.Exchanges)
			}
			r := measure.Result{V: measure.Version, ID: measure.NewUUIDv7(time.Now()), Measurement: "m", Kind: measure.KindIdentity,
				Time: time.Now(), Dst: srv.Addr().String(), AF: 4, DNS: res}
			if srv.Addr().Is6() {
				r.AF = 6
			}
			if err := r.Validate(time.Now()); err != nil {
				t.Errorf("result does not validate: %v", err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Config{Delay: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res, err := Identity(ctx, srv, measure.DNSSpec{TimeoutMS: 5000, Retries: 3}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %v, want promptly after cancel", d)
	}
	for _, ex := range res.Exchanges {
		if ex.Error != ErrCanceled {
			t.Errorf("error %q, want %q", ex.Error, ErrCanceled)
		}
	}

	// A context deadline shorter than the spec timeout bounds the query.
	ctx, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	start = time.Now()
	qr, err := Query(ctx, srv, measure.DNSSpec{Proto: "tcp", TimeoutMS: 5000}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second || qr.Exchanges[0].Error != ErrTimeout {
		t.Errorf("tcp under ctx deadline: %v, error %q", d, qr.Exchanges[0].Error)
	}
}

func TestInvalid(t *testing.T) {
	srv := netip.MustParseAddrPort("127.0.0.1:1")
	for name, spec := range map[string]measure.DNSSpec{
		"class":     {QClass: "HS"},
		"type":      {QType: "NOPE"},
		"name":      {QName: "a..b"},
		"udp size":  {UDPSize: 100},
		"retries":   {Retries: 99},
		"transport": {Proto: "quic"},
	} {
		if _, err := Query(context.Background(), srv, spec, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Query(context.Background(), netip.AddrPort{}, measure.DNSSpec{}, Options{}); err == nil {
		t.Error("zero server: no error")
	}
}

func TestDefaultPortAndOptions(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Config{})
	var ids atomic.Int32
	var dialed string
	opt := Options{
		ID: func() uint16 { ids.Add(1); return 4242 },
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = addr
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	res, err := Query(context.Background(), netip.AddrPortFrom(srv.Addr(), 0), measure.DNSSpec{Port: int(srv.Port())}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if dialed != srv.String() || res.Exchanges[0].Error != "" || ids.Load() != 1 {
		t.Errorf("dialed %q error %q ids %d", dialed, res.Exchanges[0].Error, ids.Load())
	}
	if binary.BigEndian.Uint16(res.Exchanges[0].Raw) != 4242 {
		t.Errorf("reply id %d, want 4242", binary.BigEndian.Uint16(res.Exchanges[0].Raw))
	}
	if _, err := json.Marshal(res); err != nil {
		t.Error(err)
	}
}

func TestEscapeText(t *testing.T) {
	for in, want := range map[string]string{
		"ams1":        "ams1",
		"a\\b":        `a\\b`,
		"\x00\xff\n":  `\x00\xff\x0a`,
		"caf\xc3\xa9": `caf\xc3\xa9`,
	} {
		if got := EscapeText([]byte(in)); got != want {
			t.Errorf("EscapeText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := capString("aé", 2); got != "a" {
		t.Errorf("capString split a rune: %q", got)
	}
}
