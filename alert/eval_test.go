package alert

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)

// step is one evaluation tick of a recorded sequence: the snapshot the
// service would read at t0+At seconds and the moves written since.
type step struct {
	At           int
	Sites        map[string]int
	Unreachable  int
	Unidentified int
	Moves        []Move // Time is set from At when zero
}

// run feeds steps to a fresh evaluator (the fake clock is each step's time)
// and returns the events as "t=<sec> <status> <subject>/<af>".
func run(t *testing.T, rules []Rule, steps []step) []string {
	t.Helper()
	return runWith(t, NewEvaluator(), rules, steps)
}

// runWith is run on a prepared evaluator (regions, checks).
func runWith(t *testing.T, e *Evaluator, rules []Rule, steps []step) []string {
	t.Helper()
	var out []string
	for _, s := range steps {
		now := t0.Add(time.Duration(s.At) * time.Second)
		for i := range s.Moves {
			if s.Moves[i].Time.IsZero() {
				s.Moves[i].Time = now
			}
			s.Moves[i].TargetID, s.Moves[i].AF = 1, 4
		}
		e.AddMoves(s.Moves)
		e.Observe(Snapshot{TargetID: 1, AF: 4, Time: now, Sites: s.Sites, Unreachable: s.Unreachable, Unidentified: s.Unidentified})
		for _, ev := range e.Eval(now, rules) {
			out = append(out, fmt.Sprintf("t=%d %s %s/%d", s.At, ev.Alert.Status, ev.Alert.Subject, ev.Alert.AF))
			if ev.Alert.Status == StatusFiring {
				ev.Alert.ID = int64(len(out))
				e.Bind(ev.Alert)
			}
		}
		e.Prune(now, 2*time.Hour)
	}
	return out
}

func rule(k Kind, threshold float64, mod func(*Rule)) []Rule {
	r := Rule{ID: 7, TargetID: 1, Target: "lab", Kind: k, AF: 4, Threshold: threshold, Enabled: true}
	if mod != nil {
		mod(&r)
	}
	r.Defaults()
	return []Rule{r}
}

// every makes n steps dt seconds apart starting at from, with sites(i).
func every(from, dt, n int, sites func(i int) map[string]int) []step {
	var out []step
	for i := range n {
		out = append(out, step{At: from + i*dt, Sites: sites(i)})
	}
	return out
}

// The four ams probes of steady moving away (to nrt and gru) and back.
var (
	awayFromAms = []Move{{Probe: "p1", From: "ams", To: "nrt"}, {Probe: "p2", From: "ams", To: "gru"},
		{Probe: "p3", From: "ams", To: "nrt"}, {Probe: "p4", From: "ams", To: "gru"}}
	backToAms = []Move{{Probe: "p1", From: "nrt", To: "ams"}, {Probe: "p2", From: "gru", To: "ams"},
		{Probe: "p3", From: "nrt", To: "ams"}, {Probe: "p4", From: "gru", To: "ams"}}
)

// withMoves puts a copy of moves on steps[i].
func withMoves(steps []step, i int, moves []Move) []step {
	steps[i].Moves = append([]Move(nil), moves...)
	return steps
}

func TestEvalRecordedSequences(t *testing.T) {
	steady := map[string]int{"ams": 4, "nrt": 3, "gru": 3}
	withdrawn := map[string]int{"nrt": 5, "gru": 5}
	tests := []struct {
		name  string
		rules []Rule
		steps []step
		want  []string
	}{{
		name:  "site withdrawn and restored: one firing, one resolved",
		rules: rule(KindSiteLost, 0, func(r *Rule) { r.ResolveSec = 20 }),
		steps: slices.Concat(
			every(0, 10, 3, func(int) map[string]int { return steady }),
			every(30, 10, 4, func(int) map[string]int { return withdrawn }),
			every(70, 10, 5, func(int) map[string]int { return steady })),
		want: []string{"t=30 firing ams/4", "t=90 resolved ams/4"},
	}, {
		// The window's start predates the site's probes (they were still
		// enrolling): neither end of the window has the site, the middle
		// does.
		name:  "a site that appeared within the window and is lost fires",
		rules: rule(KindSiteLost, 0, func(r *Rule) { r.MinProbes = 1; r.ResolveSec = -1 }),
		steps: []step{
			{At: 0, Sites: map[string]int{"nrt": 1}},
			{At: 10, Sites: map[string]int{"nrt": 1, "ams": 1}},
			{At: 20, Sites: map[string]int{"nrt": 2}},
		},
		want: []string{"t=20 firing ams/4"},
	}, {
		name:  "a lost site stays firing after the window has passed it",
		rules: rule(KindSiteLost, 0, func(r *Rule) { r.WindowSec = 60; r.ResolveSec = -1 }),
		steps: slices.Concat(
			every(0, 10, 2, func(int) map[string]int { return steady }),
			every(20, 10, 30, func(int) map[string]int { return withdrawn }),
			every(320, 10, 1, func(int) map[string]int { return steady })),
		want: []string{"t=20 firing ams/4", "t=320 resolved ams/4"},
	}, {
		name:  "flapping every tick for ten minutes: one alert, not a storm",
		rules: rule(KindSiteLost, 0, func(r *Rule) { r.ResolveSec = 60 }),
		steps: slices.Concat(
			every(0, 10, 60, func(i int) map[string]int {
				if i%2 == 1 {
					return withdrawn
				}
				return steady
			}),
			every(600, 10, 10, func(int) map[string]int { return steady })),
		// The site comes back every other tick, never for the 60 s the
		// rule wants before resolving; it resolves 60 s after it was
		// first seen back for good (t=600).
		want: []string{"t=10 firing ams/4", "t=660 resolved ams/4"},
	}, {
		name:  "one noisy probe moving does not page (min_probes)",
		rules: rule(KindShareChange, 20, func(r *Rule) { r.WindowSec = 60 }),
		steps: func() []step {
			out := every(0, 10, 30, func(i int) map[string]int {
				if i%3 == 1 {
					return map[string]int{"ams": 1, "nrt": 2}
				}
				return map[string]int{"ams": 2, "nrt": 1}
			})
			for i := range out {
				switch i % 3 {
				case 1:
					out[i].Moves = []Move{{Probe: "noisy", From: "ams", To: "nrt"}}
				case 2:
					out[i].Moves = []Move{{Probe: "noisy", From: "nrt", To: "ams"}}
				}
			}
			return out
		}(),
		want: nil,
	}, {
		name:  "probes enrolling shift shares without moving: no alert",
		rules: rule(KindShareChange, 20, func(r *Rule) { r.MinProbes = 1; r.WindowSec = 10 }),
		steps: []step{
			{At: 0, Sites: map[string]int{"ams": 1}},
			{At: 10, Sites: map[string]int{"ams": 1, "nrt": 3}},
			{At: 20, Sites: map[string]int{"ams": 2, "nrt": 6, "gru": 4}},
		},
		want: nil,
	}, {
		name:  "share change: no alert before the history covers the window",
		rules: rule(KindShareChange, 20, nil), // 300 s window
		steps: withMoves(slices.Concat(
			every(0, 10, 6, func(int) map[string]int { return steady }),
			every(60, 10, 7, func(int) map[string]int { return withdrawn })), 6, awayFromAms),
		want: nil,
	}, {
		name:  "share change: a 10 s blip does not fire with for_sec 30",
		rules: rule(KindShareChange, 20, func(r *Rule) { r.WindowSec = 60; r.ForSec = 30; r.ResolveSec = -1 }),
		steps: withMoves(withMoves(slices.Concat(
			every(0, 10, 8, func(int) map[string]int { return steady }),
			every(80, 10, 1, func(int) map[string]int { return withdrawn }),
			every(90, 10, 12, func(int) map[string]int { return steady })), 8, awayFromAms), 9, backToAms),
		// The blip is seen for one tick going down (base before it) and
		// one tick coming back (base on it): 10 s each, under for_sec.
		want: nil,
	}, {
		name:  "share change: a lasting move fires once and resolves when the window has passed it",
		rules: rule(KindShareChange, 20, func(r *Rule) { r.WindowSec = 60; r.ForSec = 20; r.ResolveSec = -1 }),
		steps: withMoves(slices.Concat(
			every(0, 10, 8, func(int) map[string]int { return steady }),
			every(80, 10, 12, func(int) map[string]int { return withdrawn })), 8, awayFromAms),
		// ams falls 40 points (nrt and gru gain exactly 20, not more);
		// once the window starts after the move, the share no longer
		// changes within it.
		want: []string{"t=100 firing ams/4", "t=140 resolved ams/4"},
	}, {
		name: "hysteresis band: a share hovering between clear and threshold keeps firing",
		rules: rule(KindUnreachable, 30, func(r *Rule) {
			r.Clear = 10
			r.ResolveSec = -1
		}),
		steps: []step{
			{At: 0, Sites: map[string]int{"ams": 10}},
			{At: 10, Sites: map[string]int{"ams": 6}, Unreachable: 4},  // 40%: fires
			{At: 20, Sites: map[string]int{"ams": 8}, Unreachable: 2},  // 20%: in the band
			{At: 30, Sites: map[string]int{"ams": 6}, Unreachable: 4},  // 40%: still the same alert
			{At: 40, Sites: map[string]int{"ams": 8}, Unreachable: 2},  // 20%
			{At: 50, Sites: map[string]int{"ams": 10}, Unreachable: 0}, // 0%: resolves
		},
		want: []string{"t=10 firing /4", "t=50 resolved /4"},
	}, {
		name:  "unidentified share with too few probes stays quiet",
		rules: rule(KindUnidentified, 10, func(r *Rule) { r.MinProbes = 3 }),
		steps: []step{
			{At: 0, Sites: map[string]int{"ams": 8}, Unidentified: 2},
			{At: 10, Sites: map[string]int{"ams": 7}, Unidentified: 3},
		},
		want: []string{"t=10 firing /4"},
	}, {
		name:  "burst: more than N probes moved within the window",
		rules: rule(KindBurst, 2, func(r *Rule) { r.WindowSec = 60; r.ResolveSec = -1 }),
		steps: []step{
			{At: 0, Sites: steady, Moves: []Move{{Probe: "p1", From: "ams", To: "nrt"}}},
			{At: 10, Sites: steady, Moves: []Move{{Probe: "p2", From: "ams", To: "nrt"}, {Probe: "p3", From: "ams", To: "gru"}}},
			{At: 20, Sites: steady},
			{At: 80, Sites: steady}, // the moves have left the window
		},
		want: []string{"t=10 firing /4", "t=80 resolved /4"},
	}, {
		name:  "flap: probes changing site again and again",
		rules: rule(KindFlap, 0, func(r *Rule) { r.MinProbes = 1; r.ResolveSec = -1; r.WindowSec = 100 }),
		steps: []step{
			{At: 0, Sites: steady, Moves: []Move{{Probe: "p1", From: "ams", To: "nrt"}}},
			{At: 10, Sites: steady, Moves: []Move{{Probe: "p1", From: "nrt", To: "ams"}}},
			{At: 20, Sites: steady, Moves: []Move{{Probe: "p1", From: "ams", To: "nrt"}}},
			{At: 30, Sites: steady},
			{At: 125, Sites: steady},
		},
		want: []string{"t=20 firing /4", "t=125 resolved /4"},
	}, {
		name:  "disabled rules and other families are not evaluated",
		rules: append(rule(KindSiteLost, 0, func(r *Rule) { r.Enabled = false }), rule(KindSiteLost, 0, func(r *Rule) { r.ID = 8; r.AF = 6 })...),
		steps: slices.Concat(
			every(0, 10, 2, func(int) map[string]int { return steady }),
			every(20, 10, 2, func(int) map[string]int { return withdrawn })),
		want: nil,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, tc.rules, tc.steps)
			if !slices.Equal(got, tc.want) {
				t.Errorf("events:\n got  %s\n want %s", strings.Join(got, ", "), strings.Join(tc.want, ", "))
			}
		})
	}
}

func TestEvalAlertContent(t *testing.T) {
	e := NewEvaluator()
	rules := rule(KindSiteLost, 0, nil)
	// The window starts while probes are still enrolling: the alert's
	// "before" is the fullest catchment of the lost site, not that.
	e.Observe(Snapshot{TargetID: 1, AF: 4, Time: t0.Add(-10 * time.Second), Sites: map[string]int{"ams": 1}})
	e.Observe(Snapshot{TargetID: 1, AF: 4, Time: t0, Sites: map[string]int{"ams": 2, "nrt": 2}})
	e.AddMoves([]Move{{TargetID: 1, AF: 4, Probe: "p-a", Time: t0.Add(5 * time.Second), From: "ams", To: "nrt"},
		{TargetID: 1, AF: 4, Probe: "p-b", Time: t0.Add(6 * time.Second), From: "ams", To: "nrt"}})
	e.Observe(Snapshot{TargetID: 1, AF: 4, Time: t0.Add(10 * time.Second), Sites: map[string]int{"nrt": 4}})
	evs := e.Eval(t0.Add(10*time.Second), rules)
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1: %+v", len(evs), evs)
	}
	a := evs[0].Alert
	if a.Status != StatusFiring || a.Subject != "ams" || a.Target != "lab" || a.Kind != KindSiteLost {
		t.Errorf("alert %+v", a)
	}
	if !slices.Equal(a.Probes, []string{"p-a", "p-b"}) {
		t.Errorf("probes %v, want [p-a p-b]", a.Probes)
	}
	want := []SiteShare{{Site: "nrt", BeforeProbes: 2, AfterProbes: 4, BeforeShare: 50, AfterShare: 100},
		{Site: "ams", BeforeProbes: 2, AfterProbes: 0, BeforeShare: 50, AfterShare: 0}}
	if !slices.Equal(a.Sites, want) {
		t.Errorf("sites %+v, want %+v", a.Sites, want)
	}
	// Adding the same moves again (an overlapping read) changes nothing.
	if fresh := e.AddMoves([]Move{{TargetID: 1, AF: 4, Probe: "p-a", Time: t0.Add(5 * time.Second), From: "ams", To: "nrt"}}); len(fresh) != 0 {
		t.Errorf("re-added move counted as new: %+v", fresh)
	}
}

func TestEvalRestoredAlertResolvesInsteadOfRefiring(t *testing.T) {
	e := NewEvaluator()
	rules := rule(KindSiteLost, 0, func(r *Rule) { r.ResolveSec = -1 })
	e.Restore(Alert{ID: 42, RuleID: 7, AF: 4, Subject: "ams", StartedAt: t0.Add(-time.Hour)})
	e.Observe(Snapshot{TargetID: 1, AF: 4, Time: t0, Sites: map[string]int{"nrt": 4}})
	if evs := e.Eval(t0, rules); len(evs) != 0 {
		t.Fatalf("restored alert fired again: %+v", evs)
	}
	e.Observe(Snapshot{TargetID: 1, AF: 4, Time: t0.Add(10 * time.Second), Sites: map[string]int{"nrt": 2, "ams": 2}})
	evs := e.Eval(t0.Add(10*time.Second), rules)
	if len(evs) != 1 || evs[0].Alert.Status != StatusResolved || evs[0].Alert.ID != 42 {
		t.Fatalf("got %+v, want alert 42 resolved", evs)
	}
}

func TestEvalDisabledRuleForgetsItsAlerts(t *testing.T) {
	e := NewEvaluator()
	rules := rule(KindSiteLost, 0, func(r *Rule) { r.MinProbes = 1; r.ResolveSec = -1 })
	e.Observe(Snapshot{TargetID: 1, AF: 4, Time: t0, Sites: map[string]int{"ams": 2, "nrt": 2}})
	e.Observe(Snapshot{TargetID: 1, AF: 4, Time: t0.Add(10 * time.Second), Sites: map[string]int{"nrt": 4}})
	if evs := e.Eval(t0.Add(10*time.Second), rules); len(evs) != 1 {
		t.Fatalf("got %+v, want ams firing", evs)
	}
	// Muted (its alert resolved by the store), then unmuted while ams is
	// still lost: it fires again, as a new alert.
	rules[0].Enabled = false
	if evs := e.Eval(t0.Add(20*time.Second), rules); len(evs) != 0 {
		t.Fatalf("muted rule produced %+v", evs)
	}
	rules[0].Enabled = true
	e.Observe(Snapshot{TargetID: 1, AF: 4, Time: t0.Add(30 * time.Second), Sites: map[string]int{"nrt": 4}})
	if evs := e.Eval(t0.Add(30*time.Second), rules); len(evs) != 1 || evs[0].Alert.Status != StatusFiring {
		t.Fatalf("unmuted rule: %+v, want ams firing again", evs)
	}
}

func TestRuleValidate(t *testing.T) {
	tests := []struct {
		r    Rule
		want string // substring of the error; "" for valid
	}{
		{Rule{Kind: KindSiteLost}, ""},
		{Rule{Kind: KindShareChange, Threshold: 20, AF: 6}, ""},
		{Rule{Kind: "nope"}, "unknown kind"},
		{Rule{Kind: KindShareChange}, "threshold 0"},
		{Rule{Kind: KindShareChange, Threshold: 150}, "threshold 150"},
		{Rule{Kind: KindBurst, Threshold: 5, Clear: 6}, "clear 6 above threshold 5"},
		{Rule{Kind: KindSiteLost, AF: 5}, "af 5"},
		{Rule{Kind: KindSiteLost, WindowSec: 5}, "window_sec 5"},
		{Rule{Kind: KindSiteLost, Name: "a\nb"}, "control characters"},
		{Rule{Kind: KindRegionFlap, Region: RegionCountry, Threshold: 2}, ""},
		{Rule{Kind: KindRegionFlap, Region: RegionASN}, ""},
		{Rule{Kind: KindRegionFlap}, `region ""`},
		{Rule{Kind: KindRegionFlap, Region: "city"}, `region "city"`},
		{Rule{Kind: KindFlap, Region: RegionCountry}, "only for region_flap"},
		{Rule{Kind: KindSpeedOfLight, Threshold: 0}, ""},
		{Rule{Kind: KindInflation, Threshold: 10, WindowSec: 7200}, ""},
		{Rule{Kind: KindInflation, Threshold: 10, WindowSec: 300}, "window_sec 300 (want at least 600)"},
	}
	for _, tc := range tests {
		tc.r.Defaults()
		err := tc.r.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", tc.r, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one containing %q", tc.r, err, tc.want)
		}
	}
}
