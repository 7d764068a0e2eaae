package alert

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// flapping returns moves of probes between ams and nrt: each probe goes
// away on even steps and back on odd ones.
func flapping(i int, probes ...string) []Move {
	var out []Move
	for _, p := range probes {
		if i%2 == 0 {
			out = append(out, Move{Probe: p, From: "ams", To: "nrt"})
		} else {
			out = append(out, Move{Probe: p, From: "nrt", To: "ams"})
		}
	}
	return out
}

// regionSteps makes n steps 10 s apart from `from`, with the moves of
// flappers(i) on each; the snapshot does not matter to region_flap.
func regionSteps(from, n int, flappers func(i int) []Move) []step {
	out := every(from, 10, n, func(int) map[string]int { return map[string]int{"ams": 10, "nrt": 10} })
	for i := range out {
		out[i].Moves = flappers(i)
	}
	return out
}

func TestEvalRegionFlap(t *testing.T) {
	regions := map[string]ProbeRegion{}
	for i := range 20 { // a large region: 20 probes in the US
		regions[fmt.Sprintf("us%d", i)] = ProbeRegion{Country: "US", Continent: "NA", ASN: 64501}
	}
	for _, p := range []string{"de1", "de2", "de3", "de4"} {
		regions[p] = ProbeRegion{Country: "DE", Continent: "EU", ASN: 64500}
	}
	regions["fr1"] = ProbeRegion{Country: "FR", Continent: "EU", ASN: 64502}
	regions["nl1"] = ProbeRegion{Country: "NL", Continent: "EU", ASN: 64500}
	none := func(int) []Move { return nil }
	rf := func(region string, threshold float64) []Rule {
		return rule(KindRegionFlap, threshold, func(r *Rule) {
			r.Region, r.WindowSec, r.ResolveSec, r.FlapChanges = region, 60, 30, 3
		})
	}
	tests := []struct {
		name  string
		rules []Rule
		steps []step
		want  []string
	}{{
		// Four German probes flap for two minutes: more than 1 of the
		// region's probes flapping. One alert, held while the flapping
		// goes on (no storm), resolved once the window has no flappers
		// and 30 s passed.
		name:  "a flapping region fires once, not a storm",
		rules: rf(RegionCountry, 1),
		steps: slices.Concat(regionSteps(0, 3, none),
			regionSteps(30, 12, func(i int) []Move { return flapping(i, "de1", "de2", "de3", "de4") }),
			regionSteps(150, 14, none)),
		// 3 changes each by t=50; from t=180 the window (120, 180]
		// holds only 2 changes per probe (no flapper): clear, and 30 s
		// later resolved.
		want: []string{"t=50 firing country:DE/4", "t=210 resolved country:DE/4"},
	}, {
		name:  "one noisy probe in a large region does not fire",
		rules: rf(RegionCountry, 0), // even "any probe flapping" is held back by min_probes 2
		steps: slices.Concat(regionSteps(0, 30, func(i int) []Move { return flapping(i, "us7") })),
		want:  nil,
	}, {
		// One flapper each in DE, FR and NL: no country has 2, the
		// continent EU has 3, the ASN 64500 (DE and NL) has 2.
		name:  "grouping by continent or asn sees what no country shows",
		rules: slices.Concat(rf(RegionCountry, 1), withID(rf(RegionContinent, 1), 8), withID(rf(RegionASN, 1), 9)),
		steps: regionSteps(0, 6, func(i int) []Move { return flapping(i, "de1", "fr1", "nl1") }),
		want:  []string{"t=20 firing continent:EU/4", "t=20 firing asn:AS64500/4"},
	}, {
		name:  "probes of unknown region are no region's",
		rules: rf(RegionCountry, 0),
		steps: regionSteps(0, 10, func(i int) []Move { return flapping(i, "x1", "x2", "x3") }),
		want:  nil,
	}, {
		// Hysteresis on the count: 4 flappers fire (threshold 3); 3
		// (above clear 2.25) keep the alert; it resolves only at 2.
		name: "a count hovering between clear and threshold holds the alert",
		rules: rule(KindRegionFlap, 3, func(r *Rule) {
			r.Region, r.WindowSec, r.ResolveSec, r.FlapChanges = RegionCountry, 60, -1, 3
		}),
		steps: slices.Concat(
			regionSteps(0, 6, func(i int) []Move { return flapping(i, "de1", "de2", "de3", "de4") }),
			regionSteps(60, 12, func(i int) []Move { return flapping(i, "de1", "de2", "de3") }),
			regionSteps(180, 12, func(i int) []Move { return flapping(i, "de1", "de2") })),
		// de3's last change is at t=170; at t=210 the window (150, 210]
		// has 2 of them: 2 flappers, at or below clear.
		want: []string{"t=20 firing country:DE/4", "t=210 resolved country:DE/4"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEvaluator()
			e.SetRegions(1, regions)
			got := runWith(t, e, tc.rules, tc.steps)
			if !slices.Equal(got, tc.want) {
				t.Errorf("events\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func withID(rs []Rule, id int64) []Rule {
	rs[0].ID = id
	return rs
}

func TestEvalRegionFlapAlertContent(t *testing.T) {
	e := NewEvaluator()
	e.SetRegions(1, map[string]ProbeRegion{"de1": {Country: "DE"}, "de2": {Country: "DE"}})
	rules := rule(KindRegionFlap, 1, func(r *Rule) { r.Region, r.WindowSec = RegionCountry, 60 })
	var fired []Alert
	for i := range 4 {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		ms := flapping(i, "de2", "de1")
		for j := range ms {
			ms[j].TargetID, ms[j].AF, ms[j].Time = 1, 4, now
		}
		e.AddMoves(ms)
		e.Observe(Snapshot{TargetID: 1, AF: 4, Time: now, Sites: map[string]int{"ams": 1, "nrt": 1}})
		for _, ev := range e.Eval(now, rules) {
			fired = append(fired, ev.Alert)
		}
	}
	if len(fired) != 1 {
		t.Fatalf("alerts %+v, want one", fired)
	}
	a := fired[0]
	if a.Subject != "country:DE" || a.Value != 2 || !slices.Equal(a.Probes, []string{"de1", "de2"}) || !strings.Contains(a.Summary, "2 probes in country:DE") {
		t.Errorf("alert %+v", a)
	}
}

// TestEvalChecks drives speed_of_light and inflation with check results
// arriving every 300 s while evaluation runs every 10 s (the service's
// two cadences), on a fake clock.
func TestEvalChecks(t *testing.T) {
	finds := func(n int) []Finding {
		var out []Finding
		for i := range n {
			out = append(out, Finding{AF: 4, Key: fmt.Sprintf("p%d>ams", i), Weight: float64(i), Detail: fmt.Sprintf("p%d", i)})
		}
		out = append(out, Finding{AF: 6, Key: "v6>ams", Weight: 100, Detail: "v6"}) // the other family: not counted
		return out
	}
	for _, kind := range []Kind{KindSpeedOfLight, KindInflation} {
		t.Run(string(kind), func(t *testing.T) {
			// threshold 3, clear 2.25, resolve after 60 s clear.
			rules := rule(kind, 3, nil)
			// Check results at t=0, 300, ...: none yet, 5, 3 (in the
			// band: hold), 5, 1 (clear), 0.
			checks := map[int][]Finding{300: finds(5), 600: finds(3), 900: finds(5), 1200: finds(1), 1500: nil}
			e := NewEvaluator()
			var got []string
			var first Alert
			for at := 0; at <= 1800; at += 10 {
				now := t0.Add(time.Duration(at) * time.Second)
				e.Observe(Snapshot{TargetID: 1, AF: 4, Time: now, Sites: map[string]int{"ams": 5}})
				if fs, ok := checks[at]; ok {
					e.ObserveCheck(1, kind, now, fs)
				}
				for _, ev := range e.Eval(now, rules) {
					got = append(got, fmt.Sprintf("t=%d %s %g", at, ev.Alert.Status, ev.Alert.Value))
					if ev.Alert.Status == StatusFiring {
						first = ev.Alert
						ev.Alert.ID = 1
						e.Bind(ev.Alert)
					}
				}
			}
			want := []string{"t=300 firing 5", "t=1260 resolved 1"}
			if !slices.Equal(got, want) {
				t.Errorf("events\n got %q\nwant %q", got, want)
			}
			// The sample lists the worst first.
			if !slices.Equal(first.Probes, []string{"p4", "p3", "p2", "p1", "p0"}) {
				t.Errorf("sample %q, want the worst first", first.Probes)
			}
		})
	}
}

// TestEvalChecksMissingDataHolds: a firing check alert is neither
// resolved nor re-fired while no check result exists for its family
// (e.g. after a restart, before the first check).
func TestEvalChecksMissingDataHolds(t *testing.T) {
	e := NewEvaluator()
	rules := rule(KindInflation, 1, nil)
	e.Restore(Alert{ID: 5, RuleID: rules[0].ID, AF: 4, Subject: "", StartedAt: t0})
	for at := 0; at <= 600; at += 10 {
		now := t0.Add(time.Duration(at) * time.Second)
		e.Observe(Snapshot{TargetID: 1, AF: 4, Time: now, Sites: map[string]int{"ams": 5}})
		if evs := e.Eval(now, rules); len(evs) != 0 {
			t.Fatalf("t=%d: events %+v without any check result", at, evs)
		}
	}
	now := t0.Add(610 * time.Second)
	e.ObserveCheck(1, KindInflation, now, nil)
	e.Eval(now, rules)
	evs := e.Eval(now.Add(70*time.Second), rules)
	if len(evs) != 1 || evs[0].Alert.Status != StatusResolved || evs[0].Alert.ID != 5 {
		t.Fatalf("after an empty check: %+v, want the restored alert resolved", evs)
	}
}

// TestEvalRegionFlapWithoutRegionsHolds: a region alert restored after a
// restart is neither resolved nor fired again before the probes' regions
// are read; once they are and the region is calm, it resolves.
func TestEvalRegionFlapWithoutRegionsHolds(t *testing.T) {
	e := NewEvaluator()
	rules := rule(KindRegionFlap, 1, func(r *Rule) { r.Region, r.ResolveSec = RegionCountry, -1 })
	e.Restore(Alert{ID: 5, RuleID: rules[0].ID, AF: 4, Subject: "country:DE", StartedAt: t0})
	for at := 0; at <= 120; at += 10 {
		now := t0.Add(time.Duration(at) * time.Second)
		e.Observe(Snapshot{TargetID: 1, AF: 4, Time: now, Sites: map[string]int{"ams": 5}})
		if evs := e.Eval(now, rules); len(evs) != 0 {
			t.Fatalf("t=%d: events %+v before the regions are known", at, evs)
		}
	}
	e.SetRegions(1, map[string]ProbeRegion{"de1": {Country: "DE"}})
	evs := e.Eval(t0.Add(130*time.Second), rules)
	if len(evs) != 1 || evs[0].Alert.Status != StatusResolved || evs[0].Alert.ID != 5 || evs[0].Alert.Subject != "country:DE" {
		t.Fatalf("with regions and no flapping: %+v, want the restored alert resolved", evs)
	}
}
