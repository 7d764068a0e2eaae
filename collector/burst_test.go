package collector_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/agent"
)

// siteRunner answers identity measurements with the site it is set to, as
// the anycast routing would.
type siteRunner struct {
	mu   sync.Mutex
	site string
	runs int
}

func (s *siteRunner) set(site string) { s.mu.Lock(); s.site = site; s.mu.Unlock() }
func (s *siteRunner) count() int      { s.mu.Lock(); defer s.mu.Unlock(); return s.runs }

func (s *siteRunner) run(_ context.Context, m measure.Measurement) measure.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Spec.Kind != measure.KindIdentity {
		return measure.Result{Error: "test runner: only identity"}
	}
	s.runs++
	r := identityResult(m.ID, m.Address, 4, measure.Identity{HostnameBind: "ns1." + s.site + ".k.example"})
	r.Time = time.Now().UTC()
	return *r
}

// TestConfirmationBurst: when one probe's result shows its site changed,
// the collector at once asks the other connected probe last seen at the
// same site to measure again, and records the burst.
func TestConfirmationBurst(t *testing.T) {
	e := newEnv(t, func(c *collector.Config) { c.BurstCooldown = time.Minute })
	e.store.mu.Lock()
	tg := testTarget()
	tg.Addr6 = "" // one family keeps the test's bookkeeping simple
	e.store.targets = []collector.Target{tg}
	e.store.mu.Unlock()
	if err := e.c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	fast := func(c *agent.Config) { c.UploadDelay = 50 * time.Millisecond; c.UploadMinGap = 100 * time.Millisecond }
	ra, rb := &siteRunner{site: "ams"}, &siteRunner{site: "ams"}
	a := startAgentRunner(t, e, ra.run, fast)
	b := startAgentRunner(t, e, rb.run, fast)
	waitLive(t, a, "connected", 1, 10*time.Second)
	waitLive(t, b, "connected", 1, 10*time.Second)
	// Both probes' first results (within FirstRunSpread) are stored.
	waitFor(t, 15*time.Second, "first results of both probes stored", func() bool {
		// identity and ping (an error result) each
		return ra.count() >= 1 && rb.count() >= 1 && a.Status().Upload.Accepted >= 2 && b.Status().Upload.Accepted >= 2
	})

	ra.set("fra")
	rb.set("fra")
	before := rb.count()
	// a notices the change (its run is nudged here, as its interval would).
	if got := e.c.Nudge([]string{a.Status().Probe}, []string{"k-root/identity/4"}, "test"); len(got) != 1 {
		t.Fatalf("nudge reached %v", got)
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "b measured again after a's change", func() bool { return rb.count() > before })
	t.Logf("second probe re-measured %s after the first was nudged", time.Since(start).Round(time.Millisecond))
	bursts := e.c.Bursts()
	if len(bursts) != 1 {
		t.Fatalf("bursts %+v, want exactly one", bursts)
	}
	ev := bursts[0]
	if ev.Trigger != a.Status().Probe || ev.From != "site:ams" || ev.To != "site:fra" || !slices.Equal(ev.Nudged, []string{b.Status().Probe}) {
		t.Errorf("burst %+v: want trigger %s, ams -> fra, nudged [%s]", ev, a.Status().Probe, b.Status().Probe)
	}
	// b's confirming result shows the same move but is inside the
	// cooldown: no second burst.
	waitFor(t, 10*time.Second, "b's confirmation stored", func() bool { return b.Status().Upload.Accepted >= 3 })
	if n := len(e.c.Bursts()); n != 1 {
		t.Errorf("%d bursts after the confirmation, want 1 (cooldown)", n)
	}
}

func startAgentRunner(t *testing.T, e *env, run agent.Runner, mod func(*agent.Config)) *agent.Agent {
	return startAgent(t, e.srv.URL, e.tok, newRuns(), func(c *agent.Config) {
		c.Runner = run
		if mod != nil {
			mod(c)
		}
	})
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
