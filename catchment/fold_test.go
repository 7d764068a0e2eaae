package catchment

import (
	"testing"
	"time"
)

// TestFold: observations of several tracks, interleaved in time order, fold
// onto the stored states: each track's latest state is its newest
// observation's, and the changes are those of Advance, in order.
func TestFold(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	a, b, c := Key{Target: 1, Probe: "a", AF: 4}, Key{Target: 1, Probe: "b", AF: 4}, Key{Target: 1, Probe: "c", AF: 6}
	prev := map[Key]Latest{
		a: {Key: a, State: StateSite, Site: "ams", ObservedAt: t0, Since: t0},
		c: {Key: c, State: StateSite, Site: "lhr", ObservedAt: t0, Since: t0},
	}
	obs := []Observation{
		{Key: a, Time: t0.Add(1 * time.Minute), State: StateSite, Site: "ams"}, // no change
		{Key: b, Time: t0.Add(2 * time.Minute), State: StateSite, Site: "fra"}, // first observation
		{Key: a, Time: t0.Add(3 * time.Minute), State: StateSite, Site: "fra"}, // ams -> fra
		{Key: b, Time: t0.Add(4 * time.Minute), State: StateUnreachable},       // keeps fra, no change
		{Key: a, Time: t0.Add(5 * time.Minute), State: StateSite, Site: "ams"}, // fra -> ams, from the folded state
	}
	latest, changes := Fold(prev, obs)
	if len(latest) != 2 {
		t.Fatalf("got %d latest states, want 2 (only observed tracks)", len(latest))
	}
	if l := latest[a]; l.Site != "ams" || !l.ObservedAt.Equal(t0.Add(5*time.Minute)) || !l.Since.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("a: got %+v, want ams observed and since +5m", l)
	}
	if l := latest[b]; l.State != StateUnreachable || l.Site != "fra" {
		t.Errorf("b: got %s at %q, want unreachable, last site fra", l.State, l.Site)
	}
	want := []struct {
		key      Key
		from, to string // "" from: first observation
	}{{b, "", "fra"}, {a, "ams", "fra"}, {a, "fra", "ams"}}
	if len(changes) != len(want) {
		t.Fatalf("got %d changes, want %d: %+v", len(changes), len(want), changes)
	}
	for i, w := range want {
		ch := changes[i]
		from := ""
		if ch.From != nil {
			from = ch.From.Site
		}
		if ch.Key != w.key || from != w.from || ch.To.Site != w.to {
			t.Errorf("change %d: got %s %q -> %q, want %s %q -> %q", i, ch.Key.Probe, from, ch.To.Site, w.key.Probe, w.from, w.to)
		}
	}
	if _, ok := prev[b]; ok || prev[a].Site != "ams" {
		t.Error("Fold changed prev")
	}
}
