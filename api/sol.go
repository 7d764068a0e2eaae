package api

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

// SpeedOfLightStore is what the speed-of-light report needs beyond Store.
// It is a separate interface so that stores (and test fakes) without it
// keep working: the report then answers unavailable.
type SpeedOfLightStore interface {
	// SiteRTTs returns, per (probe, af, site), the RTTs of the target's
	// identified results in [From, To), ascending.
	SiteRTTs(ctx context.Context, q SiteRTTQuery) ([]SiteRTTs, error)
}

// SiteRTTQuery selects identified results of one target.
type SiteRTTQuery struct {
	TargetID int
	From, To time.Time
	AF       int
}

// SiteRTTs is every RTT of one track towards one site, ascending.
type SiteRTTs struct {
	Probe string
	AF    int
	Site  string
	RTTs  []float64
}

// SpeedOfLightReport checks every identified result of a target in a range
// against the speed of light in fibre (catchment.Impossible), and lists
// for each currently unidentified track the sites its RTT still allows.
type SpeedOfLightReport struct {
	Target     string     `json:"target"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	KmPerMS    float64    `json:"km_per_ms"` // distance bound per ms of RTT
	SlackKm    float64    `json:"slack_km"`
	Checked    int        `json:"checked"`    // results with a site, an RTT and both locations known
	Impossible int        `json:"impossible"` // of those, physically impossible
	Unchecked  int        `json:"unchecked"`  // results with a site but no probe or site location
	Sites      []SOLCount `json:"sites"`
	Probes     []SOLCount `json:"probes"`
	Flags      []SOLFlag  `json:"flags"`    // (probe, site) pairs with impossible results, worst first
	Inferred   []SOLGuess `json:"inferred"` // current unidentified tracks: sites still possible; never identifications
}

// SOLCount counts checked and impossible results of one site or probe.
type SOLCount struct {
	Site       string `json:"site,omitempty"`
	Probe      string `json:"probe,omitempty"`
	AF         int    `json:"af,omitempty"`
	Checked    int    `json:"checked"`
	Impossible int    `json:"impossible"`
}

// SOLFlag is one (probe, site) pair with results faster than light allows.
type SOLFlag struct {
	Probe      string  `json:"probe"`
	AF         int     `json:"af"`
	Site       string  `json:"site"`
	DistanceKm float64 `json:"distance_km"`
	MinRTT     float64 `json:"min_rtt_ms"`    // fastest result
	NeedRTT    float64 `json:"needed_rtt_ms"` // the least RTT the distance allows (slack included)
	Impossible int     `json:"impossible"`    // results faster than that
	Results    int     `json:"results"`       // all results of the pair
}

// SOLGuess is an inference for a track no rule identifies.
type SOLGuess struct {
	Probe      string                `json:"probe"`
	AF         int                   `json:"af"`
	RTT        float64               `json:"rtt_ms"`
	Candidates []catchment.Candidate `json:"candidates"`      // sites the RTT allows, nearest first
	Guess      string                `json:"guess,omitempty"` // nearest candidate
	Inferred   bool                  `json:"inferred"`        // always true: a guess, not an identification
}

func (s *Server) getSpeedOfLight(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	sol, ok := s.store.(SpeedOfLightStore)
	if !ok {
		return nil, &Error{Code: CodeUnavailable, Message: "speed-of-light check not supported by this store"}
	}
	q := newQuery(r)
	now := time.Now().UTC()
	to := q.time("to", now)
	from := q.time("from", to.Add(-time.Hour))
	af := q.int("af", 0, 0, 6)
	if q.err == nil && (af != 0 && af != 4 && af != 6) {
		q.fail("af", "want 4 or 6")
	}
	if q.err == nil && (!from.Before(to) || to.Sub(from) > 7*24*time.Hour) {
		q.fail("from", "want from before to, at most 7 days apart")
	}
	if q.err != nil {
		return nil, q.err
	}
	ctx := r.Context()
	sites, err := s.store.ListSites(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	rtts, err := sol.SiteRTTs(ctx, SiteRTTQuery{TargetID: t.ID, From: from, To: to, AF: af})
	if err != nil {
		return nil, err
	}
	// Probe locations (and the current unidentified tracks) come from the
	// catchment over the same range.
	cur, err := s.store.Catchment(ctx, CatchmentQuery{TargetID: t.ID, At: to, Window: to.Sub(from), AF: af})
	if err != nil {
		return nil, err
	}
	probeAt := map[string]catchment.Point{}
	for _, c := range cur {
		if c.Lat != nil && c.Lon != nil {
			probeAt[c.Probe] = catchment.Point{Lat: *c.Lat, Lon: *c.Lon}
		}
	}
	for _, x := range rtts { // probes with results but no current track
		if _, ok := probeAt[x.Probe]; ok {
			continue
		}
		if p, err := s.store.GetProbe(ctx, x.Probe); err == nil && p.Lat != nil && p.Lon != nil {
			probeAt[x.Probe] = catchment.Point{Lat: *p.Lat, Lon: *p.Lon}
		}
	}
	return speedOfLight(t.Name, from, to, sites, probeAt, rtts, cur), nil
}

// speedOfLight is the pure part of the report.
func speedOfLight(target string, from, to time.Time, sites []Site, probeAt map[string]catchment.Point, rtts []SiteRTTs, cur []CatchmentRow) SpeedOfLightReport {
	rep := SpeedOfLightReport{Target: target, From: from, To: to, KmPerMS: catchment.KmPerMSRTT, SlackKm: catchment.SlackKm,
		Sites: []SOLCount{}, Probes: []SOLCount{}, Flags: []SOLFlag{}, Inferred: []SOLGuess{}}
	siteAt := map[string]catchment.Point{}
	for _, s := range sites {
		if s.Lat != nil && s.Lon != nil {
			siteAt[s.Code] = catchment.Point{Lat: *s.Lat, Lon: *s.Lon}
		}
	}
	bySite := map[string]*SOLCount{}
	type pk struct {
		probe string
		af    int
	}
	byProbe := map[pk]*SOLCount{}
	for _, x := range rtts {
		pp, okP := probeAt[x.Probe]
		sp, okS := siteAt[x.Site]
		if !okP || !okS {
			rep.Unchecked += len(x.RTTs)
			continue
		}
		km := catchment.DistanceKm(pp, sp)
		need := (km - catchment.SlackKm) / catchment.KmPerMSRTT
		// RTTs are ascending: after the non-positive ones (which prove
		// nothing) the impossible ones are a prefix.
		pos := sort.Search(len(x.RTTs), func(i int) bool { return x.RTTs[i] > 0 })
		rest := x.RTTs[pos:]
		bad := sort.Search(len(rest), func(i int) bool { return !catchment.Impossible(pp, sp, rest[i]) })
		rep.Checked += len(x.RTTs)
		rep.Impossible += bad
		sc := bySite[x.Site]
		if sc == nil {
			sc = &SOLCount{Site: x.Site}
			bySite[x.Site] = sc
		}
		sc.Checked += len(x.RTTs)
		sc.Impossible += bad
		k := pk{x.Probe, x.AF}
		pc := byProbe[k]
		if pc == nil {
			pc = &SOLCount{Probe: x.Probe, AF: x.AF}
			byProbe[k] = pc
		}
		pc.Checked += len(x.RTTs)
		pc.Impossible += bad
		if bad > 0 {
			rep.Flags = append(rep.Flags, SOLFlag{Probe: x.Probe, AF: x.AF, Site: x.Site, DistanceKm: round1(km),
				MinRTT: rest[0], NeedRTT: round1(max(need, 0)), Impossible: bad, Results: len(x.RTTs)})
		}
	}
	for _, c := range bySite {
		rep.Sites = append(rep.Sites, *c)
	}
	for _, c := range byProbe {
		rep.Probes = append(rep.Probes, *c)
	}
	slices.SortFunc(rep.Sites, func(a, b SOLCount) int { return cmpCount(a, b, a.Site, b.Site) })
	slices.SortFunc(rep.Probes, func(a, b SOLCount) int { return cmpCount(a, b, a.Probe, b.Probe) })
	slices.SortFunc(rep.Flags, func(a, b SOLFlag) int {
		if a.Impossible != b.Impossible {
			return b.Impossible - a.Impossible
		}
		if a.Probe != b.Probe {
			return compareStr(a.Probe, b.Probe)
		}
		return compareStr(a.Site, b.Site)
	})
	for _, c := range cur {
		if c.State != catchment.StateUnidentified || c.RTT == nil {
			continue
		}
		pp, ok := probeAt[c.Probe]
		if !ok {
			continue
		}
		g := SOLGuess{Probe: c.Probe, AF: c.AF, RTT: *c.RTT, Candidates: catchment.Candidates(pp, *c.RTT, siteAt), Inferred: true}
		if g.Candidates == nil {
			g.Candidates = []catchment.Candidate{}
		}
		if len(g.Candidates) > 0 {
			g.Guess = g.Candidates[0].Site
		}
		rep.Inferred = append(rep.Inferred, g)
	}
	return rep
}

func cmpCount(a, b SOLCount, ka, kb string) int {
	if a.Impossible != b.Impossible {
		return b.Impossible - a.Impossible
	}
	if ka != kb {
		return compareStr(ka, kb)
	}
	return a.AF - b.AF
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
