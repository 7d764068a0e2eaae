package catchment

import (
	"cmp"
	"slices"
	"time"
)

// SiteChanges counts the catchment changes of one place over a window.
// Place is a site code or, for unmapped answers, "?identity" (the "?"
// prefix cannot occur in a site code).
type SiteChanges struct {
	Site   string `json:"site"`
	Gained int    `json:"gained"` // probes that moved here from another place
	Lost   int    `json:"lost"`   // probes that moved from here to another place
	New    int    `json:"new"`    // first observations of a probe here
}

// SummarizeChanges counts, per place, the changes with from <= Time < to
// (a zero from or to leaves that side open). A first observation (From nil)
// counts as New, not as Gained. Sorted by gained+lost, largest first, then
// by place.
func SummarizeChanges(changes []Change, from, to time.Time) []SiteChanges {
	m := map[string]*SiteChanges{}
	get := func(p string) *SiteChanges {
		s := m[p]
		if s == nil {
			s = &SiteChanges{Site: p}
			m[p] = s
		}
		return s
	}
	for _, c := range changes {
		if !inWindow(c.Time, from, to) {
			continue
		}
		toPlace := place(c.To.State, c.To.Site, c.To.Identity)
		if c.From == nil {
			if toPlace != "" {
				get(toPlace).New++
			}
			continue
		}
		if fp := place(c.From.State, c.From.Site, c.From.Identity); fp != "" {
			get(fp).Lost++
		}
		if toPlace != "" {
			get(toPlace).Gained++
		}
	}
	out := make([]SiteChanges, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(x, y SiteChanges) int {
		if c := cmp.Compare(y.Gained+y.Lost, x.Gained+x.Lost); c != 0 {
			return c
		}
		return cmp.Compare(x.Site, y.Site)
	})
	return out
}

func inWindow(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// Flap detection defaults.
const (
	DefaultFlapMinChanges = 3
	DefaultFlapWindow     = time.Hour
)

// FlapOptions configures [Flapping]. The zero value uses the defaults.
type FlapOptions struct {
	MinChanges int           // changes within Window to call a track flapping; 0 means 3
	Window     time.Duration // sliding window length; 0 means one hour
}

// Flapper is one flapping track (probe, target, address family).
type Flapper struct {
	Key
	Changes int       `json:"changes"` // most changes within any one window
	Total   int       `json:"total"`   // all changes of the track in the input
	First   time.Time `json:"first"`   // first and last change of the busiest window
	Last    time.Time `json:"last"`
	Sites   []string  `json:"sites"` // places visited in the busiest window, in order, without repeats
}

// Flapping finds tracks with at least MinChanges changes within some
// sliding window of length Window (both ends inclusive). First
// observations (From nil) are not changes. Sorted by Changes, largest
// first, then by probe, target and address family.
func Flapping(changes []Change, opt FlapOptions) []Flapper {
	if opt.MinChanges <= 0 {
		opt.MinChanges = DefaultFlapMinChanges
	}
	if opt.Window <= 0 {
		opt.Window = DefaultFlapWindow
	}
	tracks := map[Key][]Change{}
	for _, c := range changes {
		if c.From != nil {
			tracks[c.Key] = append(tracks[c.Key], c)
		}
	}
	var out []Flapper
	for k, cs := range tracks {
		if len(cs) < opt.MinChanges {
			continue
		}
		slices.SortStableFunc(cs, func(x, y Change) int { return x.Time.Compare(y.Time) })
		bestLo, bestHi := 0, -1
		lo := 0
		for hi := range cs {
			for cs[hi].Time.Sub(cs[lo].Time) > opt.Window {
				lo++
			}
			if hi-lo > bestHi-bestLo {
				bestLo, bestHi = lo, hi
			}
		}
		n := bestHi - bestLo + 1
		if n < opt.MinChanges {
			continue
		}
		f := Flapper{Key: k, Changes: n, Total: len(cs), First: cs[bestLo].Time, Last: cs[bestHi].Time}
		add := func(p string) {
			if p != "" && !slices.Contains(f.Sites, p) {
				f.Sites = append(f.Sites, p)
			}
		}
		add(place(cs[bestLo].From.State, cs[bestLo].From.Site, cs[bestLo].From.Identity))
		for _, c := range cs[bestLo : bestHi+1] {
			add(place(c.To.State, c.To.Site, c.To.Identity))
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(x, y Flapper) int {
		if c := cmp.Compare(y.Changes, x.Changes); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Probe, y.Probe); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Target, y.Target); c != 0 {
			return c
		}
		return cmp.Compare(x.AF, y.AF)
	})
	return out
}
