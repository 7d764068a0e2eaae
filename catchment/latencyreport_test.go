package catchment

import "testing"

func TestLatencyEntries(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	rows := []SiteLatency{
		{Probe: "a", Site: "ams", Samples: 3, RTT: f(10), Country: "NL"},
		{Probe: "a", Site: "fra", Samples: 1, RTT: f(30), Country: "NL"},
		{Probe: "b", Site: "", Samples: 2, RTT: f(50), Country: "DE"},
		{Probe: "c", Site: "", Samples: 0, Country: "DE"},
	}
	perSite, perProbe := latencyEntries(rows)
	if len(perSite) != 4 || len(perProbe) != 3 {
		t.Fatalf("got %d per-site and %d per-probe entries, want 4 and 3", len(perSite), len(perProbe))
	}
	tests := []struct {
		name  string
		e     Entry
		state State
		site  string
		rtt   float64
	}{
		{"a merged: weighted mean, site with most answers", perProbe[0], StateSite, "ams", 15},
		{"b unidentified", perProbe[1], StateUnidentified, "", 50},
		{"c no answers is unreachable", perProbe[2], StateUnreachable, "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.e.State != tc.state || tc.e.Site != tc.site {
				t.Errorf("got %s/%s, want %s/%s", tc.e.State, tc.e.Site, tc.state, tc.site)
			}
			if tc.rtt < 0 && tc.e.RTT != nil || tc.rtt >= 0 && (tc.e.RTT == nil || *tc.e.RTT != tc.rtt) {
				t.Errorf("got rtt %v, want %v", tc.e.RTT, tc.rtt)
			}
		})
	}
}
