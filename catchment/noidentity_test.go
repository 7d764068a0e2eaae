package catchment

import (
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// TestUnidentifiedReason: an answered result without an identity is
// unidentified with the reason as its identity, so that unidentified
// probes group by why instead of under one empty identity.
func TestUnidentifiedReason(t *testing.T) {
	idf, err := NewIdentifier(nil, []Rule{{Source: "any", Match: "exact", Pattern: "ams1", Site: "ams"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	res := func(rcodes ...string) *measure.Result {
		d := &measure.DNSResult{}
		for _, rc := range rcodes {
			d.Exchanges = append(d.Exchanges, measure.DNSExchange{QName: "hostname.bind.", Proto: "udp", Rcode: rc, RTT: 5})
		}
		return &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: "p", Kind: measure.KindIdentity, Time: ts, AF: 4, DNS: d}
	}
	for _, tc := range []struct {
		name     string
		r        *measure.Result
		identity string
	}{
		{"refused", res("REFUSED"), "(REFUSED)"},
		{"servfail after noerror", res("NOERROR", "SERVFAIL"), "(SERVFAIL)"},
		{"notimp", res("NOTIMP"), "(NOTIMP)"},
		{"noerror without TXT", res("NOERROR", "NOERROR"), "(no TXT)"},
		{"no rcode (legacy answers)", res(""), "(no TXT)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ObservationFromResult(1, tc.r, idf)
			if err != nil || o.State != StateUnidentified || o.Identity != tc.identity {
				t.Errorf("got %s %q (%v), want unidentified %q", o.State, o.Identity, err, tc.identity)
			}
		})
	}
	// A real identity is untouched, mapped or not.
	r := res("NOERROR")
	r.DNS.Identity = &measure.Identity{HostnameBind: "weird1"}
	if o, _ := ObservationFromResult(1, r, idf); o.Identity != "weird1" {
		t.Errorf("unmapped identity = %q, want weird1", o.Identity)
	}
	// A timeout is still unreachable, with no reason.
	r = res("")
	r.DNS.Exchanges[0].Error = "timeout"
	if o, _ := ObservationFromResult(1, r, idf); o.State != StateUnreachable || o.Identity != "" {
		t.Errorf("timeout: %s %q, want unreachable", o.State, o.Identity)
	}
}
