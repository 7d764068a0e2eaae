package api_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"testing"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/measure"
)

// TestMeasurementAdhoc: an admin key may measure an address that is no
// registered target. IP literals go to the probes as given (their own
// policy refuses special ranges); hostnames are resolved here and only
// globally reachable addresses kept. The Live here is a fake: nothing is
// sent anywhere.
func TestMeasurementAdhoc(t *testing.T) {
	live := &fakeLive{connected: []string{"p-1", "p-2", "p-3"}}
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "anycast.test":
			return []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("193.0.14.129"),
				netip.MustParseAddr("193.0.14.130"), netip.MustParseAddr("::ffff:10.0.0.2"), netip.MustParseAddr("2001:7fd::1")}, nil
		case "private.test":
			return []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1"), netip.MustParseAddr("198.51.100.7")}, nil
		case "broken.test":
			return nil, errors.New("server misbehaving")
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	e := newEnv(t, api.Config{Live: live, MeasurePerHour: 100, MeasureConcurrent: 100, Resolve: resolve})
	e.seed()
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"documentation literal", `{"address":"198.51.100.7","kinds":["ping","trace"],"limit":2}`, []string{"198.51.100.7"}},
		{"loopback literal: the probes decide", `{"address":"127.0.0.1","kinds":["ping"]}`, []string{"127.0.0.1"}},
		{"IPv6 literal", `{"address":"2001:db8::7","kinds":["identity"]}`, []string{"2001:db8::7"}},
		{"hostname: public addresses, one per family", `{"address":"anycast.test.","kinds":["dns"]}`, []string{"193.0.14.129", "2001:7fd::1"}},
		{"hostname, af 6", `{"address":"anycast.test","af":6}`, []string{"2001:7fd::1"}},
	} {
		r := e.do("POST", "/api/v1/measurements", e.admin, c.body)
		if r.status != http.StatusAccepted {
			t.Errorf("%s: %d %s, want 202", c.name, r.status, r.body)
			continue
		}
		req := live.last()
		var got []string
		for _, a := range req.Addrs {
			got = append(got, a.String())
		}
		if !slices.Equal(got, c.want) || req.Target != "" || req.Address == "" || len(req.Probes) == 0 {
			t.Errorf("%s: live request %+v (addrs %v), want ad-hoc addrs %v", c.name, req, got, c.want)
		}
	}
	if req := live.reqs[0]; !slices.Equal(req.Kinds, []measure.Kind{measure.KindPing, measure.KindTrace}) || len(req.Probes) != 2 {
		t.Errorf("first request kinds %v probes %v, want ping+trace on 2 probes", req.Kinds, req.Probes)
	}
	n := len(live.reqs)
	for _, c := range []struct {
		body, param string
		status      int
	}{
		{`{"address":"private.test"}`, "address", http.StatusBadRequest},
		{`{"address":"nxdomain.test"}`, "address", http.StatusBadRequest},
		{`{"address":"broken.test"}`, "", http.StatusServiceUnavailable},
		{`{"address":"not a host"}`, "address", http.StatusBadRequest},
		{`{"address":"fe80::1%eth0"}`, "address", http.StatusBadRequest},
		{`{"address":"198.51.100.7","target":"k-root"}`, "address", http.StatusBadRequest},
		{`{"address":"198.51.100.7","from":{"site":"ams"}}`, "from.site", http.StatusBadRequest},
		{`{"address":"198.51.100.7","af":6}`, "af", http.StatusBadRequest},
		{`{"address":"198.51.100.7","kinds":["smoke"]}`, "kinds", http.StatusBadRequest},
	} {
		r := e.do("POST", "/api/v1/measurements", e.admin, c.body)
		var ae apiError
		r.decode(t, &ae)
		if r.status != c.status || ae.Error.Param != c.param {
			t.Errorf("%s: %d %s, want %d on %q", c.body, r.status, r.body, c.status, c.param)
		}
	}
	if len(live.reqs) != n {
		t.Errorf("refused requests reached the collector: %+v", live.reqs[n:])
	}
	// A read key may not, whatever the address (the collector is not asked).
	if r := e.do("POST", "/api/v1/measurements", e.read, `{"address":"198.51.100.7"}`); r.status != http.StatusForbidden {
		t.Errorf("read key: %d %s, want 403", r.status, r.body)
	}
	if len(live.reqs) != n {
		t.Error("a read key's ad-hoc request reached the collector")
	}
}
