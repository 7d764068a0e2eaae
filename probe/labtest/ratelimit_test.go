package labtest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/anycatch/anycatch/lab"
	"github.com/anycatch/anycatch/measure"
)

// keepDefaultICMPLimits puts Linux's default ICMP error rate limits back
// in every router and site namespace of the lab (lab.Up lifts the per
// destination limit): per source a burst of 6 errors, then one per
// second, and at most 1000 a second overall (burst 50).
func keepDefaultICMPLimits(t testing.TB, ctx context.Context, l *lab.Lab) {
	t.Helper()
	for _, n := range l.Plan().Nodes {
		if n.Kind == lab.KindClient {
			continue
		}
		out, err := l.Exec(ctx, n.Name, "sysctl", "-q", "-w",
			"net.ipv4.icmp_ratelimit=1000", "net.ipv6.icmp.ratelimit=1000",
			"net.ipv4.icmp_msgs_per_sec=1000", "net.ipv4.icmp_msgs_burst=50")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
}

// TestBackToBackUDPTraceDefaultRateLimits runs two UDP traces from one
// client to the anycast address back to back, each a fresh process (no
// remembered distance), with the kernel's default ICMP rate limits: the
// first spends the site's burst of port-unreachables, so the second's
// probes at the site's TTL go unanswered at first. Both must reach the
// site at its true hop count, with no phantom hops past it.
func TestBackToBackUDPTraceDefaultRateLimits(t *testing.T) {
	l := upLab(t, lab.DefaultTopology(), "r")
	bin := probeBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keepDefaultICMPLimits(t, ctx, l)
	truth, err := l.Truth(ctx)
	if err != nil || !truth.Complete() {
		t.Fatalf("truth: %v (complete %v)", err, truth.Complete())
	}
	owners := addrOwners(l.Plan())
	const client = "lon1"
	ct, _ := truth.Client(client)
	for _, fam := range []struct {
		dst netip.Addr
		pt  lab.PathTruth
	}{{l.AnycastV4(), ct.V4}, {l.AnycastV6(), ct.V6}} {
		want, err := wantHops(l.Plan(), fam.pt, fam.dst)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			start := time.Now()
			r, err := runProbe(ctx, l, bin, client, false, "trace", "--json", "--proto", "udp", fam.dst.String())
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%s trace %d: %v", family(fam.dst), i+1, err)
			}
			t.Logf("%s trace %d: %v, hops %v, dest_ttl_inferred %v", family(fam.dst), i+1, took.Round(time.Millisecond), responders(r.Trace), r.Trace.DestTTLInferred)
			checkReached(t, r.Trace, fam.dst, want, owners)
		}
	}
}

// checkReached checks that tr reached dst at the hop count truth gives,
// and that every answer came from the router truth puts at its TTL;
// timeouts are allowed (routers rate-limit too).
func checkReached(t *testing.T, tr *measure.TraceResult, dst netip.Addr, want []hopWant, owners map[netip.Addr]string) {
	t.Helper()
	if tr == nil {
		t.Errorf("no trace payload")
		return
	}
	if !tr.Reached || len(tr.Hops) != len(want) || tr.Hops[len(tr.Hops)-1].TTL != len(want) {
		t.Errorf("got %s, want reached at ttl %d (%v)", responders(tr), len(want), want)
		return
	}
	for i, h := range tr.Hops {
		for _, p := range h.Probes {
			if p.Timeout {
				continue
			}
			from, err := netip.ParseAddr(p.From)
			if err != nil || (want[i].addr.IsValid() && from != want[i].addr) || owners[from] != want[i].node && from != dst {
				t.Errorf("ttl %d: answer from %s, want %v", h.TTL, p.From, want[i])
			}
		}
	}
}
