package catchment

import (
	"reflect"
	"testing"
	"time"
)

// track replays observations through Advance and returns the changes, so
// the tests see exactly what the collector would store.
func track(t0 time.Time, probe string, steps ...string) []Change {
	var prev *Latest
	var out []Change
	for i, s := range steps {
		o := Observation{Key: Key{Target: 1, Probe: probe, AF: 4}, Time: t0.Add(time.Duration(i) * 10 * time.Minute)}
		switch {
		case s == "-":
			o.State = StateUnreachable
		case s[0] == '?':
			o.State, o.Identity = StateUnidentified, s[1:]
		default:
			o.State, o.Site = StateSite, s
		}
		next, c := Advance(prev, o)
		prev = &next
		if c != nil {
			out = append(out, *c)
		}
	}
	return out
}

func TestSummarizeChanges(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	var cs []Change
	cs = append(cs, track(t0, "p1", "ams", "fra", "-", "ams")...) // new ams, ams->fra, fra->ams
	cs = append(cs, track(t0, "p2", "ams", "?odd", "ams")...)     // new ams, ams->?odd, ?odd->ams
	cs = append(cs, track(t0, "p3", "lhr")...)                    // new lhr
	tests := []struct {
		name     string
		from, to time.Time
		want     []SiteChanges
	}{
		{"everything", time.Time{}, time.Time{}, []SiteChanges{
			{Site: "ams", Gained: 2, Lost: 2, New: 2},
			{Site: "?odd", Gained: 1, Lost: 1},
			{Site: "fra", Gained: 1, Lost: 1},
			{Site: "lhr", New: 1},
		}},
		{"window excludes first observations", t0.Add(time.Minute), t0.Add(25 * time.Minute), []SiteChanges{
			{Site: "ams", Gained: 1, Lost: 2},
			{Site: "?odd", Gained: 1, Lost: 1},
			{Site: "fra", Gained: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SummarizeChanges(cs, tt.from, tt.to); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFlapping(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	var cs []Change
	// p1 flaps every 10 minutes: 4 changes within 40 minutes.
	cs = append(cs, track(t0, "p1", "ams", "fra", "ams", "fra", "lhr")...)
	// p2 moved once.
	cs = append(cs, track(t0, "p2", "ams", "fra")...)
	// p3 changes every 10 minutes too, but only 2 changes.
	cs = append(cs, track(t0, "p3", "ams", "?x", "ams")...)
	tests := []struct {
		name string
		opt  FlapOptions
		want []Flapper
	}{
		{"defaults", FlapOptions{}, []Flapper{
			{Key: Key{1, "p1", 4}, Changes: 4, Total: 4, First: t0.Add(10 * time.Minute), Last: t0.Add(40 * time.Minute), Sites: []string{"ams", "fra", "lhr"}},
		}},
		{"narrow window", FlapOptions{MinChanges: 2, Window: 10 * time.Minute}, []Flapper{
			{Key: Key{1, "p1", 4}, Changes: 2, Total: 4, First: t0.Add(10 * time.Minute), Last: t0.Add(20 * time.Minute), Sites: []string{"ams", "fra"}},
			{Key: Key{1, "p3", 4}, Changes: 2, Total: 2, First: t0.Add(10 * time.Minute), Last: t0.Add(20 * time.Minute), Sites: []string{"ams", "?x"}},
		}},
		{"too few", FlapOptions{MinChanges: 5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Flapping(cs, tt.opt); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
