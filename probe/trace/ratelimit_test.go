package trace

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// linuxLimit is Linux's default per-source ICMP error limiter.
func linuxLimit() *simLimiter { return &simLimiter{burst: 6, interval: time.Second} }

// checkDest checks that res reaches the destination at its true TTL with
// no hop past it, that every router hop answered at least once, and
// returns the destination hop.
func checkDest(t *testing.T, res *measure.TraceResult, hops []simHop) measure.Hop {
	t.Helper()
	if !res.Reached || len(res.Hops) != len(hops) {
		t.Fatalf("got reached %v in %d hops %+v, want reached in %d", res.Reached, len(res.Hops), res.Hops, len(hops))
	}
	for i, h := range res.Hops {
		ok := false
		for _, p := range h.Probes {
			ok = ok || p.From == hops[i].addr.String()
		}
		if h.TTL != i+1 || !ok && !hops[i].silent {
			t.Errorf("hop %d: got ttl %d probes %+v, want an answer from %v", i, h.TTL, h.Probes, hops[i].addr)
		}
	}
	return res.Hops[len(res.Hops)-1]
}

// TestTraceRateLimitedBackToBack traces a destination that answers ICMP
// errors like Linux (burst 6, then one a second) twice back to back, as
// two processes would (no remembered distance): the first trace spends
// the destination's burst, so the second's probes at its true TTL go
// unanswered and it answers a later TTL once refilled. The second trace
// must still list it at its true TTL, via a repair round, not at the TTL
// the limiter happened to answer.
func TestTraceRateLimitedBackToBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v6      bool
		recverr bool
	}{{"udp4", false, false}, {"udp6", true, false}, {"udp4 recverr", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			hops := path4(3)
			if tc.v6 {
				hops = path6(3)
			}
			for i := range hops {
				hops[i].limit = linuxLimit()
			}
			n := &simNet{v6: tc.v6, hops: hops, recverr: tc.recverr, now: t0}
			spec := measure.TraceSpec{Proto: "udp"}
			res, _ := simRun(t, n, spec, context.Background(), nil)
			checkHops(t, res, hops)
			if got := n.now.Sub(t0); got != 3*time.Millisecond {
				t.Errorf("first trace took %v, want one round trip (3ms)", got)
			}
			start := n.now
			res, _ = simRun(t, n, spec, context.Background(), nil)
			took := n.now.Sub(start)
			d := checkDest(t, res, hops)
			if res.DestTTLInferred {
				t.Errorf("got dest_ttl_inferred, want the repair round to find it")
			}
			// The first wave's probes at TTL 3 and later time out (1.5s);
			// the destination answers a later TTL, a repair round 1s
			// later finds it at TTL 3.
			if want := 1500*time.Millisecond + retryPause + 20*time.Millisecond; took > want {
				t.Errorf("second trace took %v, want at most %v", took, want)
			}
			last := d.Probes[len(d.Probes)-1]
			if len(d.Probes) != 4 || last.From != hops[2].addr.String() || last.Timeout {
				t.Errorf("destination hop %+v, want three timeouts and the repair probe's answer", d.Probes)
			}
		})
	}
}

// TestTraceRemembersDistance traces like the agent, every interval with
// its process-wide memory: once the destination's distance is known, a
// trace sends nothing past it, so two back-to-back traces both find the
// destination's limiter with answers left and take one round trip. (A
// third would not: each trace costs every router 3 of its burst of 6.)
func TestTraceRemembersDistance(t *testing.T) {
	hops := path4(4)
	for i := range hops {
		hops[i].limit = linuxLimit()
	}
	n := &simNet{hops: hops, now: t0}
	dist := &Distances{}
	spec := measure.TraceSpec{Proto: "udp"}
	res, _ := simRun(t, n, spec, context.Background(), dist)
	checkHops(t, res, hops)
	for i, gap := range []time.Duration{10 * time.Second, 0} {
		n.now = n.now.Add(gap)
		start, sent := n.now, len(n.sentUDP)
		res, _ := simRun(t, n, spec, context.Background(), dist)
		checkHops(t, res, hops)
		if took := n.now.Sub(start); took != 4*time.Millisecond {
			t.Errorf("trace %d took %v, want one round trip (4ms)", i+2, took)
		}
		if got := len(n.sentUDP) - sent; got != 4*3 {
			t.Errorf("trace %d sent %d probes, want 12: none past the destination", i+2, got)
		}
	}
}

// TestTraceRememberedDistanceChanges: a remembered distance that is now a
// router, or too far, costs at most a round trip, not a timeout.
func TestTraceRememberedDistanceChanges(t *testing.T) {
	for _, tc := range []struct{ remembered, real int }{{3, 5}, {6, 4}} {
		t.Run(fmt.Sprintf("%d->%d", tc.remembered, tc.real), func(t *testing.T) {
			hops := path4(tc.real)
			n := &simNet{hops: hops, now: t0}
			dist := &Distances{}
			dist.put(n.dst(), tc.remembered, t0)
			res, _ := simRun(t, n, measure.TraceSpec{}, context.Background(), dist)
			checkHops(t, res, hops)
			if got, max := n.now.Sub(t0), time.Duration(tc.remembered+tc.real)*time.Millisecond; got > max {
				t.Errorf("took %v, want at most %v", got, max)
			}
			if got := dist.get(n.dst(), n.now); got != tc.real {
				t.Errorf("remembered %d, want %d", got, tc.real)
			}
		})
	}
}

// TestTraceInfersDestTTL: a destination that answers only probes sent
// with a large TTL (a limiter that stays empty through the repair
// rounds) is listed at the distance its reply TTL implies, marked as
// inferred, not at TTL 19 after a run of phantom timeouts.
func TestTraceInfersDestTTL(t *testing.T) {
	hops := path4(3)
	hops[2].drop = func(ttl int, _ time.Time) bool { return ttl < 19 }
	n := &simNet{hops: hops}
	res, _ := simTrace(t, n, measure.TraceSpec{Proto: "udp"}, context.Background())
	d := checkDest(t, res, hops)
	if !res.DestTTLInferred {
		t.Errorf("got dest_ttl_inferred false, want true")
	}
	if p := d.Probes[0]; p.Timeout || p.ReplyTTL != 62 {
		t.Errorf("destination hop %+v, want its reply from TTL 19", d.Probes)
	}
	// First wave timeouts, then two repair rounds (pause + timeout).
	if got, max := n.now.Sub(t0), 1500*time.Millisecond+2*(retryPause+1500*time.Millisecond)+50*time.Millisecond; got > max {
		t.Errorf("took %v, want at most %v", got, max)
	}
}

// TestTraceRateLimitedRouter: a router that answers only two errors per
// burst shows as partly silent in back-to-back traces,
// but the destination stays at its TTL and no repair round is spent on
// a router's silence.
func TestTraceRateLimitedRouter(t *testing.T) {
	hops := path4(4)
	hops[2].limit = &simLimiter{burst: 2, interval: time.Second}
	n := &simNet{hops: hops, now: t0}
	dist := &Distances{}
	spec := measure.TraceSpec{Proto: "udp"}
	for i := range 2 {
		start, sent := n.now, len(n.sentUDP)
		res, _ := simRun(t, n, spec, context.Background(), dist)
		checkDest(t, res, hops)
		answered := 0
		for _, p := range res.Hops[2].Probes {
			if !p.Timeout {
				answered++
			}
		}
		// Trace 1 waited 1.5s for its third probe: one answer refilled.
		if want := []int{2, 1}[i]; answered != want || len(res.Hops[2].Probes) != 3 {
			t.Errorf("trace %d: hop 3 %+v, want %d of 3 answered", i+1, res.Hops[2].Probes, want)
		}
		if took := n.now.Sub(start); took > 1510*time.Millisecond {
			t.Errorf("trace %d took %v, want the 1.5s probe timeout at most", i+1, took)
		}
		if i == 1 && len(n.sentUDP)-sent != 12 {
			t.Errorf("trace 2 sent %d probes, want 12", len(n.sentUDP)-sent)
		}
	}
}

func TestDestDistance(t *testing.T) {
	for _, c := range []struct{ replyTTL, want int }{
		{0, 0}, {64, 1}, {62, 3}, {65, 64}, {120, 9}, {128, 1}, {250, 6}, {255, 1}, {256, 0},
	} {
		if got := destDistance(c.replyTTL); got != c.want {
			t.Errorf("destDistance(%d): got %d, want %d", c.replyTTL, got, c.want)
		}
	}
}

func TestDistancesBounded(t *testing.T) {
	var d Distances
	for i := range maxDistances + 10 {
		d.put(netipFrom(i), 5, t0)
	}
	if len(d.m) > maxDistances {
		t.Errorf("%d entries, want at most %d", len(d.m), maxDistances)
	}
	d.put(netipFrom(1), 7, t0)
	if got := d.get(netipFrom(1), t0.Add(time.Minute)); got != 7 {
		t.Errorf("got %d, want 7", got)
	}
	if got := d.get(netipFrom(1), t0.Add(2*distanceTTL)); got != 0 {
		t.Errorf("stale entry: got %d, want 0", got)
	}
	d.put(netipFrom(1), 0, t0)
	if got := d.get(netipFrom(1), t0); got != 0 {
		t.Errorf("forgotten entry: got %d, want 0", got)
	}
}

func netipFrom(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
