package agent

import (
	"strings"
	"testing"

	"github.com/anycatch/anycatch/measure"
)

// TestCheckAdhoc: the probe's policy for ad-hoc measurements pushed by the
// collector is its policy for scheduled ones, plus the id must belong to
// the request.
func TestCheckAdhoc(t *testing.T) {
	ok := measure.Measurement{ID: "adhoc/od-1/ping/4", Address: "193.0.14.129", Spec: measure.Spec{Kind: measure.KindPing}}
	for _, c := range []struct {
		name         string
		request      string
		i            int
		m            func(m *measure.Measurement)
		allowPrivate bool
		want         string // substring of the error; "" for none
	}{
		{"public address", "od-1", 0, nil, false, ""},
		{"loopback refused", "od-1", 0, func(m *measure.Measurement) { m.Address = "127.0.0.1" }, false, "loopback"},
		{"private refused", "od-1", 0, func(m *measure.Measurement) { m.Address = "10.1.2.3" }, false, "private"},
		{"documentation refused", "od-1", 0, func(m *measure.Measurement) { m.Address = "198.51.100.7" }, false, "documentation"},
		{"loopback with allow-private", "od-1", 0, func(m *measure.Measurement) { m.Address = "127.0.0.1" }, true, ""},
		{"hostname is no address", "od-1", 0, func(m *measure.Measurement) { m.Address = "example.com" }, true, "not an IP address"},
		{"id of another request", "od-2", 0, nil, false, "does not belong"},
		{"scheduled id", "od-1", 0, func(m *measure.Measurement) { m.ID = "k-root/ping/4" }, false, "does not belong"},
		{"no request", "", 0, nil, false, "without a request"},
		{"too many", "od-1", measure.MaxAdhoc, nil, false, "more than"},
		{"http refused ad hoc", "od-1", 0, func(m *measure.Measurement) {
			m.ID = "adhoc/od-1/http/4"
			m.Spec = measure.Spec{Kind: measure.KindHTTP}
		}, false, "ad-hoc kind \"http\" refused"},
		{"ntp refused ad hoc", "od-1", 0, func(m *measure.Measurement) {
			m.ID = "adhoc/od-1/ntp/4"
			m.Spec = measure.Spec{Kind: measure.KindNTP}
		}, false, "ad-hoc kind \"ntp\" refused"},
		{"NAT64-embedded loopback refused", "od-1", 0, func(m *measure.Measurement) { m.Address = "64:ff9b::7f00:1" }, false, "NAT64 address embedding loopback 127.0.0.1"},
		{"spec over the limits", "od-1", 0, func(m *measure.Measurement) {
			m.Spec.Ping = &measure.PingSpec{Count: measure.MaxPingCount + 1}
		}, false, "spec"},
	} {
		m := ok
		if c.m != nil {
			c.m(&m)
		}
		err := checkAdhoc(c.request, c.i, m, c.allowPrivate)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
