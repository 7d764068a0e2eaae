package collector_test

import (
	"context"
	"github.com/anycatch/anycatch/catchment"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/agent"
)

// waitDone waits for an on-demand request to finish and returns its
// events by probe.
func waitDone(t *testing.T, o *collector.OnDemand, limit time.Duration) map[string][]measure.OnDemandEvent {
	t.Helper()
	deadline := time.After(limit)
	for {
		w := o.Wait()
		st := o.Status(0)
		if st.Status == measure.OnDemandDone {
			out := map[string][]measure.OnDemandEvent{}
			for i, ev := range st.Events {
				if ev.Seq != i+1 {
					t.Errorf("event %d has seq %d", i, ev.Seq)
				}
				out[ev.Probe] = append(out[ev.Probe], ev)
			}
			return out
		}
		select {
		case <-w:
		case <-deadline:
			t.Fatalf("on-demand %s not done within %s: %+v", st.ID, limit, st)
		}
	}
}

// TestOnDemand: connected probes run the request at once and their stored
// results are matched to it; a probe without a live channel is reported
// offline at once; the request ends when everyone answered.
func TestOnDemand(t *testing.T) {
	e := newEnv(t, nil)
	ra, rb := newRuns(), newRuns()
	fast := func(c *agent.Config) { c.UploadDelay = 50 * time.Millisecond }
	a := startAgent(t, e.srv.URL, e.tok, ra, fast)
	b := startAgent(t, e.srv.URL, e.tok, rb, fast)
	waitLive(t, a, "connected", 1, 10*time.Second)
	waitLive(t, b, "connected", 1, 10*time.Second)
	// Let the first scheduled runs pass so the request's runs are its own.
	ra.waitRun(t, "k-root/ping/4", 10*time.Second)
	rb.waitRun(t, "k-root/ping/4", 10*time.Second)
	time.Sleep(300 * time.Millisecond)

	pa, pb := a.Status().Probe, b.Status().Probe
	start := time.Now()
	o, err := e.c.StartOnDemand(collector.OnDemandRequest{Target: "k-root", Kinds: []measure.Kind{measure.KindPing}, AF: 4,
		Probes: []string{pa, pb, "offline-probe"}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if st := o.Status(0); len(st.Measurements) != 1 || st.Measurements[0] != "k-root/ping/4" {
		t.Fatalf("measurements %v, want [k-root/ping/4]", st.Measurements)
	}
	got := waitDone(t, o, 15*time.Second)
	t.Logf("on-demand done %s after start", time.Since(start).Round(time.Millisecond))
	for _, p := range []string{pa, pb} {
		if evs := got[p]; len(evs) != 1 || evs[0].Outcome != measure.OutcomeResult || evs[0].Result == nil || evs[0].Result.Measurement != "k-root/ping/4" {
			t.Errorf("probe %s events %+v, want one ping result", p, evs)
		}
	}
	if evs := got["offline-probe"]; len(evs) != 1 || evs[0].Outcome != measure.OutcomeOffline {
		t.Errorf("offline probe events %+v, want one offline", evs)
	}
	if e.c.OnDemandByID(o.Status(0).ID) != o {
		t.Error("finished request not found by id")
	}
	if _, err := e.c.StartOnDemand(collector.OnDemandRequest{Target: "nope"}); err == nil {
		t.Error("unknown target accepted")
	}
	if _, err := e.c.StartOnDemand(collector.OnDemandRequest{Target: "k-root", Kinds: []measure.Kind{measure.KindTrace}}); err == nil {
		t.Error("kind the target does not measure accepted")
	}
}

// TestOnDemandSilentProbeTimesOut: a connected probe that never answers is
// timed out at the deadline and the request ends.
func TestOnDemandSilentProbeTimesOut(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := authLive(ctx, t, e, p)
	start := time.Now()
	o, err := e.c.StartOnDemand(collector.OnDemandRequest{Target: "k-root", Probes: []string{p.id}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"nudge"`) {
		t.Fatalf("probe got %s, %v; want the nudge", b, err)
	}
	got := waitDone(t, o, 10*time.Second)
	if d := time.Since(start); d < time.Second {
		t.Errorf("done after %s, before the deadline", d)
	}
	evs := got[p.id]
	if len(evs) != len(o.Status(0).Measurements) || len(evs) == 0 {
		t.Fatalf("events %+v, want one timeout per measurement", evs)
	}
	for _, ev := range evs {
		if ev.Outcome != measure.OutcomeTimeout {
			t.Errorf("event %+v, want timeout", ev)
		}
	}
}

// TestOnDemandSpecialRangeRefused: a probe's own policy refuses a target in
// a special-purpose range, and says so per probe instead of staying silent.
func TestOnDemandSpecialRangeRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.store.mu.Lock()
	e.store.targets = append(e.store.targets, collector.Target{Target: catchment.Target{ID: 3, Name: "private", Addr4: "10.1.2.3", IntervalSec: 300,
		Specs: []measure.Spec{{Kind: measure.KindPing}}, IdentityOrder: []string{"nsid"}}})
	e.store.mu.Unlock()
	if err := e.c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := newRuns()
	a := startAgent(t, e.srv.URL, e.tok, r, func(c *agent.Config) { c.AllowPrivate = false })
	waitLive(t, a, "connected", 1, 10*time.Second)
	waitFor(t, 10*time.Second, "schedule loaded", func() bool { return a.Status().Schedule.Version != "" })
	o, err := e.c.StartOnDemand(collector.OnDemandRequest{Target: "private", Probes: []string{a.Status().Probe}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := waitDone(t, o, 10*time.Second)
	evs := got[a.Status().Probe]
	if len(evs) != 1 || evs[0].Outcome != measure.OutcomeRefused || !strings.Contains(evs[0].Reason, "private") {
		t.Fatalf("events %+v, want one refusal naming the private range", evs)
	}
	if r.count("private/ping/4") != 0 {
		t.Error("the refused measurement ran")
	}
}
