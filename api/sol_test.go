package api

import (
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

func TestSpeedOfLightReport(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	sites := []Site{
		{Code: "ams", Lat: f(52.31), Lon: f(4.76)},
		{Code: "gru", Lat: f(-23.43), Lon: f(-46.47)},
		{Code: "nowhere"}, // no coordinates: its results cannot be checked
	}
	probeAt := map[string]catchment.Point{
		"p-ams": {Lat: 52.37, Lon: 4.89}, // Amsterdam
		"p-sp":  {Lat: -23.55, Lon: -46.63},
	}
	rtts := []SiteRTTs{
		{Probe: "p-ams", AF: 4, Site: "ams", RTTs: []float64{0, 0.4, 1, 2}},      // all fine
		{Probe: "p-ams", AF: 6, Site: "gru", RTTs: []float64{3, 5, 50, 99, 120}}, // 9800 km: anything under ~97 ms is impossible
		{Probe: "p-sp", AF: 4, Site: "gru", RTTs: []float64{1}},
		{Probe: "p-sp", AF: 4, Site: "nowhere", RTTs: []float64{1, 2}},
		{Probe: "p-unknown", AF: 4, Site: "ams", RTTs: []float64{1}},
	}
	cur := []CatchmentRow{
		{Probe: "p-ams", AF: 4, State: catchment.StateUnidentified, RTT: f(2)},
		{Probe: "p-sp", AF: 4, State: catchment.StateUnidentified, RTT: f(300)},
		{Probe: "p-sp", AF: 6, State: catchment.StateSite, Site: "gru", RTT: f(1)},
	}
	rep := speedOfLight("lab", time.Time{}, time.Time{}, sites, probeAt, rtts, cur)
	if rep.Checked != 10 || rep.Impossible != 3 || rep.Unchecked != 3 {
		t.Errorf("got checked %d impossible %d unchecked %d, want 10, 3, 3", rep.Checked, rep.Impossible, rep.Unchecked)
	}
	if len(rep.Flags) != 1 || rep.Flags[0].Site != "gru" || rep.Flags[0].Probe != "p-ams" || rep.Flags[0].Impossible != 3 ||
		rep.Flags[0].MinRTT != 3 || rep.Flags[0].NeedRTT < 95 || rep.Flags[0].NeedRTT > 99 {
		t.Errorf("flags: got %+v", rep.Flags)
	}
	if len(rep.Sites) != 2 || rep.Sites[0].Site != "gru" || rep.Sites[0].Impossible != 3 || rep.Sites[0].Checked != 6 {
		t.Errorf("sites: got %+v, want gru first with 3 of 6", rep.Sites)
	}
	if len(rep.Probes) != 3 || rep.Probes[0].Probe != "p-ams" || rep.Probes[0].AF != 6 || rep.Probes[0].Impossible != 3 {
		t.Errorf("probes: got %+v", rep.Probes)
	}
	if len(rep.Inferred) != 2 {
		t.Fatalf("inferred: got %+v", rep.Inferred)
	}
	if g := rep.Inferred[0]; g.Probe != "p-ams" || g.Guess != "ams" || len(g.Candidates) != 1 || !g.Inferred {
		t.Errorf("inferred p-ams: got %+v, want only ams possible at 2 ms", g)
	}
	if g := rep.Inferred[1]; g.Guess != "gru" || len(g.Candidates) != 2 {
		t.Errorf("inferred p-sp at 300 ms: got %+v, want both sites possible, gru nearest", g)
	}
}
