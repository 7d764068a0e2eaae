package catchment

import (
	"testing"
	"time"
)

func TestAdvance(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	key := Key{Target: 1, Probe: "p-1", AF: 4}
	obs := func(min int, st State, site, identity string) Observation {
		return Observation{Key: key, Time: at(min), State: st, Site: site, Identity: identity}
	}
	type step struct {
		obs        Observation
		wantChange string // "" = no change; else "from->to" places
		wantState  State
		wantSite   string
		wantSince  int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first observation is a change from nothing", []step{
			{obs(0, StateSite, "ams", "ams1"), "->ams", StateSite, "ams", 0},
		}},
		{"same site keeps since", []step{
			{obs(0, StateSite, "ams", "ams1"), "->ams", StateSite, "ams", 0},
			{obs(5, StateSite, "ams", "ams2"), "", StateSite, "ams", 0},
		}},
		{"site move", []step{
			{obs(0, StateSite, "ams", "ams1"), "->ams", StateSite, "ams", 0},
			{obs(5, StateSite, "fra", "fra1"), "ams->fra", StateSite, "fra", 5},
		}},
		{"unreachable gap then same site is no change", []step{
			{obs(0, StateSite, "ams", "ams1"), "->ams", StateSite, "ams", 0},
			{obs(5, StateUnreachable, "", ""), "", StateUnreachable, "ams", 0},
			{obs(10, StateSite, "ams", "ams1"), "", StateSite, "ams", 0},
		}},
		{"unreachable gap then other site is one change", []step{
			{obs(0, StateSite, "ams", "ams1"), "->ams", StateSite, "ams", 0},
			{obs(5, StateUnreachable, "", ""), "", StateUnreachable, "ams", 0},
			{obs(10, StateSite, "fra", "fra1"), "ams->fra", StateSite, "fra", 10},
		}},
		{"unreachable first, then site", []step{
			{obs(0, StateUnreachable, "", ""), "", StateUnreachable, "", 0},
			{obs(5, StateSite, "ams", "ams1"), "->ams", StateSite, "ams", 5},
		}},
		{"late observation ignored", []step{
			{obs(10, StateSite, "ams", "ams1"), "->ams", StateSite, "ams", 10},
			{obs(5, StateSite, "fra", "fra1"), "", StateSite, "ams", 10},
		}},
		{"unmapped identities are places too", []step{
			{obs(0, StateUnidentified, "", "weird-1"), "->?weird-1", StateUnidentified, "", 0},
			{obs(5, StateUnidentified, "", "weird-1"), "", StateUnidentified, "", 0},
			{obs(10, StateUnidentified, "", "weird-2"), "?weird-1->?weird-2", StateUnidentified, "", 10},
			{obs(15, StateSite, "ams", "ams1"), "?weird-2->ams", StateSite, "ams", 15},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev *Latest
			for i, s := range tt.steps {
				next, ch := Advance(prev, s.obs)
				got := ""
				if ch != nil {
					if ch.From != nil {
						got = place(ch.From.State, ch.From.Site, ch.From.Identity)
					}
					got += "->" + place(ch.To.State, ch.To.Site, ch.To.Identity)
				}
				if got != s.wantChange {
					t.Errorf("step %d: change = %q, want %q", i, got, s.wantChange)
				}
				if next.State != s.wantState || next.Site != s.wantSite {
					t.Errorf("step %d: state = %s/%q, want %s/%q", i, next.State, next.Site, s.wantState, s.wantSite)
				}
				if !next.Since.Equal(at(s.wantSince)) {
					t.Errorf("step %d: since = %s, want %s", i, next.Since, at(s.wantSince))
				}
				prev = &next
			}
		})
	}
}
