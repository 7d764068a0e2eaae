package catchment

import "testing"

// TestNoInflationBaselineAcrossUnknown: probes without a known country
// share no region, so none is flagged against another's RTT (before, a
// probe in South America was flagged against a European baseline when
// both were "unknown"); known groups still get their baseline, and a
// measured unicast baseline still applies to an unknown probe.
func TestNoInflationBaselineAcrossUnknown(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	entries := []Entry{
		{Probe: "eu", State: StateSite, Site: "ams", RTT: f(10)},  // unknown country
		{Probe: "sa", State: StateSite, Site: "ams", RTT: f(200)}, // unknown country
		{Probe: "de1", State: StateSite, Site: "fra", RTT: f(5), Country: "DE"},
		{Probe: "de2", State: StateSite, Site: "ams", RTT: f(40), Country: "DE"},
	}
	got := Inflation(entries, InflationOptions{Grouping: Grouping{By: GroupCountry}})
	if len(got) != 1 || got[0].Probe != "de2" || got[0].Baseline != 5 {
		t.Fatalf("inflated = %+v, want only de2 against de1's 5 ms", got)
	}
	got = Inflation(entries, InflationOptions{Grouping: Grouping{By: GroupCountry},
		Unicast: []UnicastRTT{{Probe: "sa", Site: "gru", RTT: 20}}})
	if len(got) != 2 || got[0].Probe != "sa" || got[0].BaselineSource != "unicast" {
		t.Errorf("with sa's unicast RTT: inflated = %+v, want sa against its unicast 20 ms, and de2", got)
	}

	// The group x site matrix flags no cell of "unknown" either.
	rows := []SiteLatency{
		{Probe: "eu", Site: "ams", Samples: 3, RTT: f(10)},
		{Probe: "sa", Site: "gru", Samples: 3, RTT: f(200)},
	}
	sum := SummarizeLatency(rows, InflationOptions{Grouping: Grouping{By: GroupCountry}}, true)
	if len(sum.Inflated) != 0 {
		t.Errorf("summary inflated = %+v, want none", sum.Inflated)
	}
	for _, c := range sum.ByGroupSite {
		if c.Inflated {
			t.Errorf("cell %s/%s flagged inflated within the unknown group", c.Group, c.Site)
		}
	}
}
