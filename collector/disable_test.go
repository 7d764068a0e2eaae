package collector_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
)

// openLive opens p's live channel by hand (signed upgrade, challenge) and
// returns it after the welcome.
func openLive(t *testing.T, ctx context.Context, url string, p *probeClient) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	measure.SignRequest(hdr, p.key, p.id, http.MethodGet, measure.PathLive, nil, time.Now())
	c, _, err := websocket.Dial(ctx, url+measure.PathLive, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{measure.LiveSubprotocol}})
	if err != nil {
		t.Fatalf("live upgrade: %v", err)
	}
	var m measure.LiveMessage
	_, b, err := c.Read(ctx)
	if err != nil || json.Unmarshal(b, &m) != nil || m.Type != measure.LiveChallenge {
		t.Fatalf("want a challenge, got %s, %v", b, err)
	}
	b, _ = json.Marshal(measure.LiveMessage{Type: measure.LiveAuth, Probe: p.id, Proof: measure.LiveProof(p.key, p.id, m.Nonce)})
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	if _, b, err = c.Read(ctx); err != nil || json.Unmarshal(b, &m) != nil || m.Type != measure.LiveWelcome {
		t.Fatalf("want welcome, got %s, %v", b, err)
	}
	return c
}

// TestDisableClosesLiveChannel: disabling a connected probe (the store
// notifies ProbeChanged) closes its live channel at once, although its key
// is cached for an hour; it is no longer among the connected probes on-
// demand requests select from, an explicit request reports it offline,
// and it cannot reconnect. The other probe keeps its channel.
func TestDisableClosesLiveChannel(t *testing.T) {
	e := newEnv(t, func(c *collector.Config) { c.KeyCacheTTL = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bad, good := e.probe(t), e.probe(t)
	cb := openLive(t, ctx, e.srv.URL, bad)
	defer cb.CloseNow()
	cg := openLive(t, ctx, e.srv.URL, good)
	defer cg.CloseNow()
	waitConnected(t, e.c, []string{bad.id, good.id})

	e.store.mu.Lock()
	k := e.store.probes[bad.id]
	k.Disabled = true
	e.store.probes[bad.id] = k
	e.store.mu.Unlock()
	start := time.Now()
	e.c.ProbeChanged(bad.id)

	// The disabled probe's connection is closed by the collector.
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	for {
		_, _, err := cb.Read(rctx)
		if err == nil {
			continue // a queued message; the close follows
		}
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("disabled probe's channel: %v, want closed with %d", err, websocket.StatusPolicyViolation)
		}
		break
	}
	t.Logf("live channel closed %s after the change", time.Since(start).Round(time.Millisecond))
	if got := e.c.LiveProbes(); !slices.Equal(got, []string{good.id}) {
		t.Errorf("connected probes after disabling: %v, want only %s", got, good.id)
	}
	o, err := e.c.StartOnDemand(collector.OnDemandRequest{Target: "k-root", Probes: []string{bad.id}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if evs := waitDone(t, o, 5*time.Second)[bad.id]; len(evs) == 0 || evs[0].Outcome != measure.OutcomeOffline {
		t.Errorf("on-demand to the disabled probe: %+v, want offline", evs)
	}
	hdr := http.Header{}
	measure.SignRequest(hdr, bad.key, bad.id, http.MethodGet, measure.PathLive, nil, time.Now())
	if _, resp, err := websocket.Dial(ctx, e.srv.URL+measure.PathLive, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{measure.LiveSubprotocol}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("reconnect of the disabled probe: %v, want 403", err)
	}
	// The good probe's channel still works: a nudge reaches it.
	if got := e.c.Nudge([]string{good.id, bad.id}, []string{"k-root/ping/4"}, "test"); !slices.Equal(got, []string{good.id}) {
		t.Errorf("nudge reached %v, want only %s", got, good.id)
	}
	var m measure.LiveMessage
	if _, b, err := cg.Read(ctx); err != nil || json.Unmarshal(b, &m) != nil || m.Type != measure.LiveNudge {
		t.Errorf("good probe: got %+v, %v, want the nudge", m, err)
	}
}

func waitConnected(t *testing.T, c *collector.Collector, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if slices.Equal(slices.Sorted(slices.Values(c.LiveProbes())), want) {
			return
		}
	}
	t.Fatalf("connected probes %v, want %v", c.LiveProbes(), want)
}
