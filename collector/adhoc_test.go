package collector_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe"
	"github.com/anycatch/anycatch/probe/agent"
)

// TestAdhoc: an admin's ad-hoc request for an address that is no target
// reaches the real agents as a spec; a probe that allows private ranges
// (a lab probe) runs it once and its results come back through the normal
// upload, stored under the reserved ad-hoc target id without catchment;
// a volunteer probe (special ranges refused) refuses the loopback address
// and the request reports that per probe; an unconnected probe is
// offline.
func TestAdhoc(t *testing.T) {
	e := newEnv(t, nil)
	ra, rb := newRuns(), newRuns()
	fast := func(c *agent.Config) { c.UploadDelay = 50 * time.Millisecond }
	lab := startAgent(t, e.srv.URL, e.tok, ra, fast)
	volunteer := startAgent(t, e.srv.URL, e.tok, rb, func(c *agent.Config) { fast(c); c.AllowPrivate = false })
	waitLive(t, lab, "connected", 1, 10*time.Second)
	waitLive(t, volunteer, "connected", 1, 10*time.Second)
	pl, pv := lab.Status().Probe, volunteer.Status().Probe

	start := time.Now()
	o, err := e.c.StartAdhoc(collector.AdhocRequest{Address: "127.0.0.1", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Kinds: []measure.Kind{measure.KindPing, measure.KindIdentity}, Probes: []string{pl, pv, "offline-probe"}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := o.Status(0)
	id := st.ID
	wantIDs := []string{"adhoc/" + id + "/identity/4", "adhoc/" + id + "/ping/4"}
	if strings.Join(st.Measurements, ",") != strings.Join(wantIDs, ",") || st.Target != "" || st.Address != "127.0.0.1" {
		t.Fatalf("status %+v, want ad-hoc measurements %v of 127.0.0.1", st, wantIDs)
	}
	got := waitDone(t, o, 15*time.Second)
	t.Logf("ad-hoc request done %s after start", time.Since(start).Round(time.Millisecond))

	if evs := got[pl]; len(evs) != 2 {
		t.Errorf("lab probe events %+v, want two results", evs)
	} else {
		for _, ev := range evs {
			if ev.Outcome != measure.OutcomeResult || ev.Result == nil || ev.Result.Dst != "127.0.0.1" || ev.Result.Probe != pl {
				t.Errorf("lab probe event %+v, want a result for 127.0.0.1", ev)
			}
		}
	}
	for _, m := range wantIDs {
		if n := ra.count(m); n != 1 {
			t.Errorf("lab probe ran %s %d times, want once", m, n)
		}
		if n := rb.count(m); n != 0 {
			t.Errorf("volunteer probe ran refused %s %d times", m, n)
		}
	}
	// The safety property: an admin asked for loopback, the volunteer
	// probe refused, and the requester sees it per measurement.
	if evs := got[pv]; len(evs) != 2 {
		t.Errorf("volunteer probe events %+v, want two refusals", evs)
	} else {
		for _, ev := range evs {
			if ev.Outcome != measure.OutcomeRefused || !strings.Contains(ev.Reason, "loopback") {
				t.Errorf("volunteer probe event %+v, want a refusal naming loopback", ev)
			}
		}
	}
	if evs := got["offline-probe"]; len(evs) != 1 || evs[0].Outcome != measure.OutcomeOffline {
		t.Errorf("offline probe events %+v, want one offline", evs)
	}

	e.store.mu.Lock()
	stored := 0
	for _, row := range e.store.results {
		if strings.HasPrefix(row.Result.Measurement, "adhoc/"+id+"/") {
			stored++
			if row.TargetID != collector.AdhocTargetID || row.State != "" || row.Result.Probe != pl {
				t.Errorf("stored ad-hoc row target %d state %q probe %q, want target %d, no catchment state, probe %s",
					row.TargetID, row.State, row.Result.Probe, collector.AdhocTargetID, pl)
			}
		}
	}
	e.store.mu.Unlock()
	if stored != 2 {
		t.Errorf("%d ad-hoc rows stored, want 2", stored)
	}
}

// TestAdhocValidation: requests the collector cannot turn into ad-hoc
// measurements are refused before any probe is asked.
func TestAdhocValidation(t *testing.T) {
	e := newEnv(t, nil)
	a4, b4 := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")
	for name, req := range map[string]collector.AdhocRequest{
		"no address":      {Probes: []string{"p"}},
		"two of a family": {Addrs: []netip.Addr{a4, b4}},
		"unknown kind":    {Addrs: []netip.Addr{a4}, Kinds: []measure.Kind{"smtp"}},
		"invalid address": {Addrs: []netip.Addr{{}}},
		"zone":            {Addrs: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}},
	} {
		if _, err := e.c.StartAdhoc(req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestAdhocForgedResultsRejected: ingest takes a result under an ad-hoc id
// only from a probe the request asked, for that measurement's kind and
// address, until the deadline plus the grace period.
func TestAdhocForgedResultsRejected(t *testing.T) {
	var skew atomic.Int64 // moves the collector's and the probes' clock
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e := newEnv(t, func(c *collector.Config) { c.Now = now })
	asked, other := e.probe(t), e.probe(t)
	asked.now, other.now = now, now
	dialLive(t, e, asked)
	dialLive(t, e, other)

	before := "adhoc/od-0000000000000000/ping/4"
	if verdict(t, other, pingResult(before, "198.51.100.7", 4)) != measure.Rejected {
		t.Error("result for an ad-hoc id no request made was accepted")
	}
	o, err := e.c.StartAdhoc(collector.AdhocRequest{Address: "198.51.100.7", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.7")},
		Kinds: []measure.Kind{measure.KindPing}, Probes: []string{asked.id}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	id := o.Status(0).ID
	msm := "adhoc/" + id + "/ping/4"
	for name, c := range map[string]struct {
		p *probeClient
		r *measure.Result
	}{
		"probe not asked":      {other, pingResult(msm, "198.51.100.7", 4)},
		"other destination":    {asked, pingResult(msm, "198.51.100.8", 4)},
		"kind not asked":       {asked, pingResult("adhoc/"+id+"/trace/4", "198.51.100.7", 4)},
		"kind not matching id": {asked, identityResult(msm, "198.51.100.7", 4, measure.Identity{NSID: "x"})},
		"other request":        {asked, pingResult("adhoc/od-ffffffffffffffff/ping/4", "198.51.100.7", 4)},
		"backdated by days":    {asked, timed(pingResult(msm, "198.51.100.7", 4), -72*time.Hour)},
		"backdated past skew":  {asked, timed(pingResult(msm, "198.51.100.7", 4), -collector.AdhocSkew-5*time.Second)},
		"postdated past grace": {asked, timed(pingResult(msm, "198.51.100.7", 4), 5*time.Second+collector.AdhocGrace+time.Minute)},
	} {
		if v := verdict(t, c.p, c.r); v != measure.Rejected {
			t.Errorf("%s: verdict %s, want rejected", name, v)
		}
	}
	if st := o.Status(0); len(st.Events) != 0 {
		t.Fatalf("rejected uploads produced events %+v", st.Events)
	}
	first := pingResult(msm, "198.51.100.7", 4)
	if v := verdict(t, asked, first); v != measure.Accepted {
		t.Fatalf("the asked probe's result: verdict %s, want accepted", v)
	}
	got := waitDone(t, o, 10*time.Second)
	if evs := got[asked.id]; len(evs) != 1 || evs[0].Outcome != measure.OutcomeResult {
		t.Errorf("events %+v, want the asked probe's result", evs)
	}
	// One run was asked for: a second, different result is refused, the
	// same one again (a retried upload) is a duplicate, not an error.
	if v := verdict(t, asked, pingResult(msm, "198.51.100.7", 4)); v != measure.Rejected {
		t.Errorf("second result for the same ad-hoc measurement: verdict %s, want rejected", v)
	}
	if v := verdict(t, asked, first); v != measure.Duplicate {
		t.Errorf("retried upload of the accepted result: verdict %s, want duplicate", v)
	}
	// Past the deadline and the grace period the request accepts nothing
	// more, not even from the probe it asked.
	skew.Store(int64(5*time.Second + collector.AdhocGrace + time.Minute))
	if v := verdict(t, asked, pingResult(msm, "198.51.100.7", 4)); v != measure.Rejected {
		t.Errorf("result after the grace period: verdict %s, want rejected", v)
	}
}

// timed moves r's timestamp by d.
func timed(r *measure.Result, d time.Duration) *measure.Result {
	r.Time = r.Time.Add(d)
	return r
}

// verdict uploads one result as p and returns its line's verdict.
func verdict(t *testing.T, p *probeClient, r *measure.Result) measure.Verdict {
	t.Helper()
	resp, ur := p.upload([][]byte{line(t, r)}, false)
	if resp.StatusCode != http.StatusOK || len(ur.Lines) != 1 {
		t.Fatalf("upload: status %d, %+v", resp.StatusCode, ur)
	}
	if ur.Lines[0].Verdict == measure.Rejected {
		t.Logf("rejected: %s", ur.Lines[0].Reason)
	}
	return ur.Lines[0].Verdict
}

// dialLive opens p's live channel by hand and answers the challenge; the
// connection stays open (reading nothing) until the test ends.
func dialLive(t *testing.T, e *env, p *probeClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c := authLive(ctx, t, e, p)
	// Keep reading so pushed messages do not back up the collector.
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
}

// TestTargetNamedAdhoc: a registered target may be called "adhoc"; its
// scheduled ids (adhoc/kind/af) are not mistaken for ad-hoc ones.
func TestTargetNamedAdhoc(t *testing.T) {
	e := newEnv(t, nil)
	e.store.mu.Lock()
	e.store.targets = append(e.store.targets, collector.Target{Target: catchment.Target{ID: 5, Name: "adhoc", Addr4: "198.18.0.9", IntervalSec: 300,
		Specs: []measure.Spec{{Kind: measure.KindPing}}, IdentityOrder: []string{"nsid"}}})
	e.store.mu.Unlock()
	if err := e.c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := e.probe(t)
	r := pingResult("adhoc/ping/4", "198.18.0.9", 4)
	if v := verdict(t, p, r); v != measure.Accepted {
		t.Fatalf("scheduled result of target adhoc: verdict %s, want accepted", v)
	}
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	if row := e.store.results[r.ID]; row.TargetID != 5 {
		t.Errorf("stored under target %d, want 5", row.TargetID)
	}
}

// TestAdhocRealPingLoopback: with the real engines, a lab probe (special
// ranges allowed) pings the loopback address an admin asked for, and the
// stored result comes back through the request. Loopback only.
func TestAdhocRealPingLoopback(t *testing.T) {
	e := newEnv(t, nil)
	real := func(ctx context.Context, m measure.Measurement) measure.Result {
		return probe.Run(ctx, m, probe.Options{})
	}
	a := startAgentRunner(t, e, real, func(c *agent.Config) { c.UploadDelay = 50 * time.Millisecond })
	waitLive(t, a, "connected", 1, 10*time.Second)
	start := time.Now()
	o, err := e.c.StartAdhoc(collector.AdhocRequest{Address: "127.0.0.1", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Kinds: []measure.Kind{measure.KindPing}, Probes: []string{a.Status().Probe}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := waitDone(t, o, 40*time.Second)
	evs := got[a.Status().Probe]
	if len(evs) != 1 || evs[0].Outcome != measure.OutcomeResult || evs[0].Result == nil {
		t.Fatalf("events %+v, want one result", evs)
	}
	r := evs[0].Result
	if r.Ping == nil && strings.Contains(r.Error, "permi") {
		t.Skipf("no ICMP socket here: %s", r.Error)
	}
	if r.Ping == nil || r.Ping.Received == 0 || r.Dst != "127.0.0.1" {
		t.Fatalf("result %+v (ping %+v), want echo replies from 127.0.0.1", r, r.Ping)
	}
	t.Logf("ad-hoc ping of 127.0.0.1: %d/%d replies, result after %s", r.Ping.Received, r.Ping.Sent, time.Since(start).Round(time.Millisecond))
}

// authLive opens p's live channel the way a probe does (signed upgrade,
// then the signed challenge) and returns it after the welcome; the test
// closes it at its end.
func authLive(ctx context.Context, t *testing.T, e *env, p *probeClient) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	measure.SignRequest(hdr, p.key, p.id, http.MethodGet, measure.PathLive, nil, p.now())
	c, _, err := websocket.Dial(ctx, e.srv.URL+measure.PathLive, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{measure.LiveSubprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ch measure.LiveMessage
	json.Unmarshal(b, &ch)
	auth, _ := json.Marshal(measure.LiveMessage{Type: measure.LiveAuth, Probe: p.id, Proof: measure.LiveProof(p.key, p.id, ch.Nonce)})
	if err := c.Write(ctx, websocket.MessageText, auth); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil { // welcome
		t.Fatal(err)
	}
	return c
}
