package probe

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/internal/dnstest"
	"github.com/anycatch/anycatch/measure"
)

func TestRunDNS(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Config{})
	for _, kind := range []measure.Kind{measure.KindDNS, measure.KindIdentity} {
		m := measure.Measurement{
			ID: "k-root/" + string(kind), Target: "k.root", Address: srv.Addr().String(),
			Spec: measure.Spec{Kind: kind, DNS: &measure.DNSSpec{Port: int(srv.Port()), TimeoutMS: 500}},
		}
		r := Run(context.Background(), m, Options{})
		if err := r.Validate(time.Now()); err != nil {
			t.Errorf("%s: invalid result: %v", kind, err)
		}
		if r.Error != "" || r.DNS == nil || r.AF != 4 || r.Dst != "127.0.0.1" || r.Target != "k.root" || r.Measurement != m.ID {
			t.Fatalf("%s: result %+v", kind, r)
		}
		if r.DurationMS <= 0 || r.DurationMS > 1000 {
			t.Errorf("%s: duration %v ms", kind, r.DurationMS)
		}
		if kind == measure.KindIdentity && r.DNS.Identity.HostnameBind != dnstest.DefaultHostname {
			t.Errorf("identity %+v", r.DNS.Identity)
		}
	}
}

func TestRunFailures(t *testing.T) {
	panicky := func(context.Context, netip.Addr, measure.Spec, Options, *measure.Result) error { panic("boom") }
	empty := func(context.Context, netip.Addr, measure.Spec, Options, *measure.Result) error { return nil }
	var deadline time.Duration
	timed := func(ctx context.Context, _ netip.Addr, _ measure.Spec, _ Options, r *measure.Result) error {
		d, _ := ctx.Deadline()
		deadline = time.Until(d)
		r.DNS = &measure.DNSResult{Server: "x"}
		return nil
	}
	dnsSpec := measure.Spec{Kind: measure.KindDNS}
	tests := []struct {
		name    string
		addr    string
		spec    measure.Spec
		engines map[measure.Kind]Engine
		want    string // error prefix
		valid   bool
	}{
		{"bad address", "k.root", dnsSpec, nil, `invalid address "k.root"`, false},
		{"bad spec", "198.51.100.1", measure.Spec{Kind: measure.KindDNS, DNS: &measure.DNSSpec{Retries: 99}}, nil, "invalid spec: dns.retries", true},
		{"unknown kind", "198.51.100.1", measure.Spec{Kind: "smtp"}, nil, `invalid spec: spec: unknown kind "smtp"`, false},
		{"no engine", "2001:db8::1", dnsSpec, map[measure.Kind]Engine{}, "no dns engine in this probe", true},
		{"panic", "::ffff:198.51.100.1", dnsSpec, map[measure.Kind]Engine{measure.KindDNS: panicky}, "internal error: dns engine panicked: boom", true},
		{"no payload", "198.51.100.1", dnsSpec, map[measure.Kind]Engine{measure.KindDNS: empty}, "dns engine returned no result", true},
		{"deadline", "198.51.100.1", dnsSpec, map[measure.Kind]Engine{measure.KindDNS: timed}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(context.Background(), measure.Measurement{ID: "m", Address: tc.addr, Spec: tc.spec}, Options{Engines: tc.engines})
			if !strings.HasPrefix(r.Error, tc.want) || (tc.want == "") != (r.Error == "") {
				t.Errorf("error = %q, want prefix %q", r.Error, tc.want)
			}
			if err := r.Validate(time.Now()); (err == nil) != tc.valid {
				t.Errorf("validate = %v, want valid %v", err, tc.valid)
			}
		})
	}
	// dns default: 2000 ms × (2 tries) + 2 s margin.
	if want := 6 * time.Second; deadline > want || deadline < want-time.Second {
		t.Errorf("engine deadline %v, want about %v", deadline, want)
	}
	r := Run(context.Background(), measure.Measurement{ID: "m", Address: "::ffff:198.51.100.1", Spec: dnsSpec}, Options{Engines: map[measure.Kind]Engine{measure.KindDNS: panicky}})
	if r.Dst != "198.51.100.1" || r.AF != 4 {
		t.Errorf("mapped address: dst %s af %d, want 198.51.100.1 4", r.Dst, r.AF)
	}
}
