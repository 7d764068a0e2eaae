package agent

import (
	"testing"

	"github.com/anycatch/anycatch/measure"
)

// TestPlaceChanged: an identity answer that differs from the previous run
// of the same measurement (or turns into no answer) marks the result for
// an immediate upload; the first answer, a repeat, other measurements and
// other kinds do not.
func TestPlaceChanged(t *testing.T) {
	a := &Agent{}
	ident := func(msm, host string) *measure.Result {
		r := &measure.Result{Measurement: msm, Kind: measure.KindIdentity, DNS: &measure.DNSResult{}}
		if host != "" {
			r.DNS.Identity = &measure.Identity{HostnameBind: host}
		}
		return r
	}
	for i, c := range []struct {
		r    *measure.Result
		want bool
	}{
		{ident("t/identity/4", "ns1.ams"), false}, // first seen
		{ident("t/identity/4", "ns1.ams"), false}, // same
		{ident("t/identity/6", "ns1.fra"), false}, // another measurement, first seen
		{ident("t/identity/4", "ns1.fra"), true},  // moved
		{ident("t/identity/4", ""), true},         // now unreachable
		{ident("t/identity/4", ""), false},        // still unreachable
		{&measure.Result{Measurement: "t/ping/4", Kind: measure.KindPing}, false},
		{ident("t/identity/4", "ns1.fra"), true}, // answers again
	} {
		if got := a.placeChanged(c.r); got != c.want {
			t.Errorf("step %d (%s %v): got %t, want %t", i, c.r.Measurement, c.r.DNS, got, c.want)
		}
	}
}
