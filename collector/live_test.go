package collector_test

import (
	"context"
	"encoding/json"
	"github.com/anycatch/anycatch/catchment"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/agent"
)

// runs records which measurements a test agent ran.
type runs struct {
	mu   sync.Mutex
	seen map[string]int
	ch   chan string
}

func newRuns() *runs { return &runs{seen: map[string]int{}, ch: make(chan string, 256)} }

func (r *runs) runner(_ context.Context, m measure.Measurement) measure.Result {
	r.mu.Lock()
	r.seen[m.ID]++
	r.mu.Unlock()
	select {
	case r.ch <- m.ID:
	default:
	}
	return measure.Result{Error: "test runner: nothing measured"}
}

func (r *runs) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id]
}

// waitRun waits until the agent ran msm, and returns how long that took.
func (r *runs) waitRun(t *testing.T, msm string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if r.count(msm) > 0 {
			return time.Since(start)
		}
		select {
		case <-r.ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s not run within %s", msm, limit)
	return 0
}

// startAgent runs a real probe agent against url until the test ends.
// Polling is slow (MinRefresh 1 h, collector refresh 300 s by default) so
// only the live channel can deliver a change quickly.
func startAgent(t *testing.T, url, token string, r *runs, mod func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.Config{
		Collector: url, EnrollToken: token, StateDir: t.TempDir(), Runner: r.runner,
		AllowPrivate: true, MinRefresh: time.Hour, HeartbeatEvery: time.Hour, StatusEvery: time.Hour,
		LiveMaxBackoff: time.Second, DrainTimeout: time.Second, FinalUpload: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func waitLive(t *testing.T, a *agent.Agent, state string, connects int64, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		st := a.Status().Live
		if st.State == state && st.Connects >= connects {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("live channel: got %+v, want state %q with %d connects", a.Status().Live, state, connects)
}

func secondTarget() collector.Target {
	return collector.Target{Target: catchment.Target{ID: 2, Name: "new", Addr4: "198.18.9.9", IntervalSec: 3600,
		Specs: []measure.Spec{{Kind: measure.KindPing}}, IdentityOrder: []string{"nsid"}}}
}

// TestLivePushesScheduleChange: a target added while a probe is connected
// reaches it through the live channel and is measured within seconds,
// although the probe would not poll for an hour.
func TestLivePushesScheduleChange(t *testing.T) {
	e := newEnv(t, nil)
	r := newRuns()
	a := startAgent(t, e.srv.URL, e.tok, r, nil)
	waitLive(t, a, "connected", 1, 10*time.Second)
	r.waitRun(t, "k-root/ping/4", 10*time.Second) // first schedule, first run soon

	e.store.mu.Lock()
	e.store.targets = append(e.store.targets, secondTarget())
	e.store.mu.Unlock()
	if err := e.c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := r.waitRun(t, "new/ping/4", 10*time.Second)
	t.Logf("new target measured %s after the change", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("new target measured after %s, want within 5 s", took)
	}
}

// TestLiveReconnectAfterRestart: the collector goes away and a new one
// comes up on the same address; the probe reconnects by itself and
// changes pushed by the new collector reach it.
func TestLiveReconnectAfterRestart(t *testing.T) {
	fs := newFakeStore()
	fs.targets = []collector.Target{testTarget()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	start := func(ln net.Listener) (*collector.Collector, func()) {
		c, err := collector.New(collector.Config{Store: fs, RefreshEvery: time.Hour, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { c.Run(ctx) })
		srv := &http.Server{Handler: c.Handler(), BaseContext: func(net.Listener) context.Context { return ctx }}
		wg.Go(func() { srv.Serve(ln) })
		return c, func() { cancel(); srv.Close(); wg.Wait() }
	}
	c1, stop1 := start(ln)
	_, secret, err := collector.Tokens{Store: fs}.Create(context.Background(), collector.TokenOptions{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r := newRuns()
	a := startAgent(t, "http://"+addr, secret, r, nil)
	waitLive(t, a, "connected", 1, 10*time.Second)
	_ = c1
	stop1()
	waitLive(t, a, "reconnecting", 1, 10*time.Second)

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	c2, stop2 := start(ln2)
	defer stop2()
	waitLive(t, a, "connected", 2, 15*time.Second)

	fs.mu.Lock()
	fs.targets = append(fs.targets, secondTarget())
	fs.mu.Unlock()
	if err := c2.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitRun(t, "new/ping/4", 10*time.Second)
}

// TestLiveRefusedFallsBackToPolling: a collector that refuses the channel
// leaves the probe polling, and schedule changes still arrive that way.
func TestLiveRefusedFallsBackToPolling(t *testing.T) {
	e := newEnv(t, func(c *collector.Config) { c.LiveDisabled = true; c.ScheduleRefresh = 1 })
	r := newRuns()
	a := startAgent(t, e.srv.URL, e.tok, r, func(c *agent.Config) { c.MinRefresh = time.Second })
	waitLive(t, a, "polling", 0, 10*time.Second)
	if st := a.Status().Live; st.Connects != 0 || st.LastError == "" {
		t.Errorf("live status %+v: want no connects and the refusal recorded", st)
	}
	e.store.mu.Lock()
	e.store.targets = append(e.store.targets, secondTarget())
	e.store.mu.Unlock()
	if err := e.c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitRun(t, "new/ping/4", 10*time.Second)
}

// TestLiveNudge: a measure-now nudge runs a scheduled measurement out of
// turn; ids the probe does not have are ignored.
func TestLiveNudge(t *testing.T) {
	e := newEnv(t, nil)
	r := newRuns()
	a := startAgent(t, e.srv.URL, e.tok, r, nil)
	waitLive(t, a, "connected", 1, 10*time.Second)
	r.waitRun(t, "k-root/identity/4", 10*time.Second)
	time.Sleep(200 * time.Millisecond) // let the first run finish (busy flag)
	before := r.count("k-root/identity/4")
	probe := a.Status().Probe
	if got := e.c.Nudge([]string{probe, "not-connected"}, []string{"k-root/identity/4", "nope/ping/4"}, "test"); len(got) != 1 || got[0] != probe {
		t.Fatalf("nudge reached %v, want [%s]", got, probe)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.count("k-root/identity/4") == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.count("k-root/identity/4") == before {
		t.Fatal("nudged measurement did not run within 5 s")
	}
	if a.Status().Live.Nudges != 1 {
		t.Errorf("nudges counted %d, want 1", a.Status().Live.Nudges)
	}
}

// TestLiveAuth: the upgrade must be signed, and the challenge answered
// with the probe's own key; a proof for another nonce (a replay) or by
// another key is refused.
func TestLiveAuth(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	other := newProbe(t, e.srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dial := func(signed bool) (*websocket.Conn, *http.Response, error) {
		hdr := http.Header{}
		if signed {
			measure.SignRequest(hdr, p.key, p.id, http.MethodGet, measure.PathLive, nil, time.Now())
		}
		return websocket.Dial(ctx, e.srv.URL+measure.PathLive, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{measure.LiveSubprotocol}})
	}
	if _, resp, err := dial(false); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned upgrade: err %v, resp %v; want 401", err, resp)
	}
	// The signed upgrade itself is replay-safe (nonce in the signature).
	hdr := http.Header{}
	measure.SignRequest(hdr, p.key, p.id, http.MethodGet, measure.PathLive, nil, time.Now())
	c, _, err := websocket.Dial(ctx, e.srv.URL+measure.PathLive, &websocket.DialOptions{HTTPHeader: hdr.Clone(), Subprotocols: []string{measure.LiveSubprotocol}})
	if err != nil {
		t.Fatalf("signed upgrade: %v", err)
	}
	c.CloseNow()
	if _, resp, err := websocket.Dial(ctx, e.srv.URL+measure.PathLive, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{measure.LiveSubprotocol}}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed upgrade: err %v, resp %v; want 401", err, resp)
	}
	read := func(c *websocket.Conn) (measure.LiveMessage, error) {
		var m measure.LiveMessage
		_, b, err := c.Read(ctx)
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		return m, err
	}
	answer := func(proof func(nonce string) string) error {
		c, _, err := dial(true)
		if err != nil {
			t.Fatalf("signed upgrade: %v", err)
		}
		defer c.CloseNow()
		m, err := read(c)
		if err != nil || m.Type != measure.LiveChallenge {
			t.Fatalf("want a challenge, got %+v, %v", m, err)
		}
		b, _ := json.Marshal(measure.LiveMessage{Type: measure.LiveAuth, Probe: p.id, Proof: proof(m.Nonce)})
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			return err
		}
		m, err = read(c)
		if err == nil && m.Type != measure.LiveWelcome {
			t.Fatalf("got %+v after auth, want welcome", m)
		}
		return err
	}
	var lastNonce string
	if err := answer(func(n string) string { lastNonce = n; return measure.LiveProof(p.key, p.id, n) }); err != nil {
		t.Fatalf("correct proof refused: %v", err)
	}
	if err := answer(func(string) string { return measure.LiveProof(p.key, p.id, lastNonce) }); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("replayed proof: got %v, want close %d", err, websocket.StatusPolicyViolation)
	}
	if err := answer(func(n string) string { return measure.LiveProof(other.key, p.id, n) }); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("proof by another key: got %v, want close %d", err, websocket.StatusPolicyViolation)
	}
}
