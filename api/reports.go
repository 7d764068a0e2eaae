package api

import (
	"cmp"
	"encoding/csv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// CatchmentProbe is one probe's catchment as the map UI draws it.
type CatchmentProbe struct {
	Probe      string          `json:"probe"`
	AF         int             `json:"af"`
	State      catchment.State `json:"state"`
	Site       string          `json:"site,omitempty"`
	Identity   string          `json:"identity,omitempty"`
	RTT        *float64        `json:"rtt_ms"`
	ObservedAt time.Time       `json:"observed_at"`
	Since      time.Time       `json:"since"`
	Lat        *float64        `json:"lat"` // blurred
	Lon        *float64        `json:"lon"`
	Country    string          `json:"country,omitempty"`
	Continent  string          `json:"continent,omitempty"`
	ASN        *int64          `json:"asn"`
}

// CatchmentReport is the catchment of a target at a time. Aggregates count
// tracks: with af absent a dual-stack probe counts once per family.
type CatchmentReport struct {
	Target    string            `json:"target"`
	At        time.Time         `json:"at"`
	WindowSec int               `json:"window_sec"`
	AF        *int              `json:"af"`
	Group     string            `json:"group"`
	Sites     []Site            `json:"sites"`
	Probes    []CatchmentProbe  `json:"probes"`
	Total     catchment.Group   `json:"total"`
	Groups    []catchment.Group `json:"groups"`
}

// catchmentParams reads at, window and af for a target.
func (s *Server) catchmentQuery(q *query, t Target) CatchmentQuery {
	now := s.now().UTC()
	cq := CatchmentQuery{TargetID: t.ID, At: q.time("at", now), AF: q.af()}
	cq.Window = q.duration("window", 3*time.Duration(t.IntervalSec)*time.Second, 30*24*time.Hour)
	if cq.At.After(now.Add(time.Minute)) {
		q.fail("at", "is in the future")
	}
	cq.Historical = cq.At.Before(now.Add(-time.Minute))
	return cq
}

// catchmentProbes returns the probes as published (blurred; nil unless
// withProbes) and as aggregation entries.
func (s *Server) catchmentProbes(r *http.Request, cq CatchmentQuery, withProbes bool) ([]CatchmentProbe, []catchment.Entry, error) {
	rows, err := s.store.Catchment(r.Context(), cq)
	if err != nil {
		return nil, nil, err
	}
	var probes []CatchmentProbe
	if withProbes {
		probes = make([]CatchmentProbe, 0, len(rows))
	}
	entries := make([]catchment.Entry, 0, len(rows))
	for i := range rows {
		c := &rows[i]
		if withProbes {
			p := CatchmentProbe{Probe: c.Probe, AF: c.AF, State: c.State, Site: c.Site, Identity: c.Identity,
				RTT: c.RTT, ObservedAt: c.ObservedAt, Since: c.Since, Country: c.Country, Continent: c.Continent, ASN: c.ASN}
			p.Lat, p.Lon = s.blur(c.Probe, c.Lat, c.Lon)
			probes = append(probes, p)
		}
		e := catchment.Entry{Probe: c.Probe, State: c.State, Site: c.Site, Identity: c.Identity, RTT: c.RTT,
			ObservedAt: c.ObservedAt, Country: c.Country, Continent: c.Continent}
		if c.ASN != nil {
			e.ASN = *c.ASN
		}
		entries = append(entries, e)
	}
	return probes, entries, nil
}

func (s *Server) getCatchment(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := newQuery(r)
	cq := s.catchmentQuery(q, t)
	g := q.grouping(s.cfg.Regions)
	format := q.format("csv", "geojson")
	withProbes := q.bool("probes", true)
	if q.err != nil {
		s.writeError(w, r, q.err)
		return
	}
	// The per-probe list is needed for the map (JSON, GeoJSON) only.
	withProbes = withProbes && format != "csv" || format == "geojson"
	probes, entries, err := s.catchmentProbes(r, cq, withProbes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if format == "geojson" {
		writeGeoJSON(w, probes)
		return
	}
	groups := catchment.Aggregate(entries, g)
	total := catchment.Group{Key: "all", Sites: []catchment.SiteShare{}}
	if all := catchment.Aggregate(entries, catchment.Grouping{}); len(all) == 1 {
		total = all[0]
	}
	if format == "csv" {
		writeCatchmentCSV(w, append([]catchment.Group{total}, groups...))
		return
	}
	sites, err := s.store.ListSites(r.Context(), t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rep := CatchmentReport{Target: t.Name, At: cq.At, WindowSec: int(cq.Window / time.Second), Group: string(g.By),
		Sites: nonNil(sites), Probes: probes, Total: total, Groups: nonNil(groups)}
	if cq.AF != 0 {
		rep.AF = &cq.AF
	}
	for i := range rep.Groups {
		rep.Groups[i].Sites = nonNil(rep.Groups[i].Sites)
	}
	rep.Total.Sites = nonNil(rep.Total.Sites)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := writeCatchmentReport(w, &rep, withProbes); err != nil {
		s.log.Debug("api catchment write", "err", err)
	}
}

// writeCatchmentReport writes rep as encoding/json would (field order of
// CatchmentReport), streaming its probes; without withProbes the probes
// member is left out.
func writeCatchmentReport(w io.Writer, rep *CatchmentReport, withProbes bool) error {
	js := newJSONStream(w)
	js.raw(`{"target":`)
	js.value(rep.Target)
	js.raw(`,"at":`)
	js.value(rep.At)
	js.raw(`,"window_sec":`)
	js.value(rep.WindowSec)
	js.raw(`,"af":`)
	js.value(rep.AF)
	js.raw(`,"group":`)
	js.value(rep.Group)
	js.raw(`,"sites":`)
	js.value(rep.Sites)
	if withProbes {
		js.raw(`,"probes":`)
		if rep.Probes == nil {
			js.raw("null")
		} else {
			js.probes(rep.Probes, false)
		}
	}
	js.raw(`,"total":`)
	js.value(rep.Total)
	js.raw(`,"groups":`)
	js.value(rep.Groups)
	js.raw("}\n")
	return js.flush()
}

func (s *Server) getCatchmentGeoJSON(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := newQuery(r)
	cq := s.catchmentQuery(q, t)
	if q.err != nil {
		s.writeError(w, r, q.err)
		return
	}
	probes, _, err := s.catchmentProbes(r, cq, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeGeoJSON(w, probes)
}

type geoFeature struct {
	Type       string         `json:"type"`
	Geometry   geoPoint       `json:"geometry"`
	Properties CatchmentProbe `json:"properties"`
}

type geoPoint struct {
	Type        string     `json:"type"`
	Coordinates [2]float64 `json:"coordinates"` // lon, lat
}

type featureCollection struct {
	Type     string       `json:"type"`
	Features []geoFeature `json:"features"`
}

// writeGeoJSON writes probes with a known position as Point features;
// probes without one cannot be drawn and are left out.
func writeGeoJSON(w http.ResponseWriter, probes []CatchmentProbe) {
	w.Header().Set("Content-Type", "application/geo+json")
	js := newJSONStream(w)
	js.raw(`{"type":"FeatureCollection","features":`)
	js.probes(probes, true)
	js.raw("}\n")
	_ = js.flush()
}

// CSV column orders are part of the API: add columns only at the end.
var (
	catchmentCSVHeader = []string{"group", "probes", "unidentified", "unreachable", "site", "site_probes", "share", "median_rtt_ms"}
	latencyCSVHeader   = []string{"dimension", "key", "probes", "count", "loss", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"}
	changesCSVHeader   = []string{"ts", "probe", "af", "from_state", "from_site", "from_identity", "to_state", "to_site", "to_identity", "rtt_ms"}
)

func newCSV(w http.ResponseWriter, header []string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(header)
	return cw
}

// writeCatchmentCSV writes one row per (group, site); a group with no
// identified site gets one row with an empty site.
func writeCatchmentCSV(w http.ResponseWriter, groups []catchment.Group) {
	cw := newCSV(w, catchmentCSVHeader)
	for _, g := range groups {
		head := []string{g.Key, itoa(g.Probes), itoa(g.Unidentified), itoa(g.Unreachable)}
		if len(g.Sites) == 0 {
			_ = cw.Write(append(head, "", "0", "0", ""))
		}
		for _, ss := range g.Sites {
			_ = cw.Write(append(slices.Clone(head), ss.Site, itoa(ss.Probes), ftoa(ss.Share), fptoa(ss.MedianRTT)))
		}
	}
	cw.Flush()
}

// LatencyReport is a target's latency over a time range.
type LatencyReport struct {
	Target   string                   `json:"target"`
	From     time.Time                `json:"from"`
	To       time.Time                `json:"to"`
	Kind     measure.Kind             `json:"kind"`
	AF       *int                     `json:"af"`
	Group    string                   `json:"group"`
	Total    catchment.LatencyStats   `json:"total"`
	Sites    []catchment.LatencyStats `json:"sites"`
	Groups   []catchment.LatencyStats `json:"groups"`
	Inflated []catchment.Inflated     `json:"inflated"`
	// ByGroupSite is the group × site matrix: per (group, site) the
	// statistics of the group's probes that reached that site.
	ByGroupSite []GroupSiteLatency `json:"by_group_site"`
}

// GroupSiteLatency is one cell of a latency report's group × site matrix.
// Site is a site code, "?identity" for unmapped answers or "unreachable".
type GroupSiteLatency struct {
	Group  string   `json:"group"`
	Site   string   `json:"site"`
	Probes int      `json:"probes"`
	Count  int      `json:"count"`
	Loss   float64  `json:"loss"`
	Min    *float64 `json:"min,omitempty"`
	P50    *float64 `json:"p50,omitempty"`
	P90    *float64 `json:"p90,omitempty"`
	P99    *float64 `json:"p99,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	// InflatedProbes counts the cell's probes listed in inflated.
	InflatedProbes int `json:"inflated_probes"`
	// Inflated flags a cell whose p50 exceeds the best site p50 of its
	// group by both inflation thresholds: the group would do better at
	// another site.
	Inflated bool `json:"inflated"`
}

// groupSiteMatrix computes the group × site cells from per-(probe, site)
// entries, sorted by group then site, with inflation flags from opt's
// thresholds and the per-probe inflated list.
func groupSiteMatrix(perSite []catchment.Entry, g catchment.Grouping, opt catchment.InflationOptions, inflated []catchment.Inflated) []GroupSiteLatency {
	key := func(e catchment.Entry) string { return g.Key(e) + "\x00" + catchment.BySite(e) }
	stats := catchment.Latency(perSite, key)
	extra, ratio := opt.MinExtraMS, opt.MinRatio
	if extra == 0 {
		extra = catchment.DefaultInflationMinExtraMS
	}
	if ratio == 0 {
		ratio = catchment.DefaultInflationMinRatio
	}
	type cell struct{ group, site string }
	nInflated := map[cell]int{}
	for _, in := range inflated {
		nInflated[cell{in.Group, in.Site}]++
	}
	out := make([]GroupSiteLatency, 0, len(stats))
	best := map[string]float64{}
	for _, st := range stats {
		group, site, _ := strings.Cut(st.Key, "\x00")
		c := GroupSiteLatency{Group: group, Site: site, Probes: st.Probes, Count: st.Count, Loss: st.Loss,
			Min: st.Min, P50: st.P50, P90: st.P90, P99: st.P99, Max: st.Max, InflatedProbes: nInflated[cell{group, site}]}
		if st.P50 != nil && site != "unreachable" && !strings.HasPrefix(site, "?") {
			if b, ok := best[group]; !ok || *st.P50 < b {
				best[group] = *st.P50
			}
		}
		out = append(out, c)
	}
	for i := range out {
		c := &out[i]
		b, ok := best[c.Group]
		if !ok || c.P50 == nil || b <= 0 || c.Site == "unreachable" || strings.HasPrefix(c.Site, "?") {
			continue
		}
		c.Inflated = *c.P50-b > extra && *c.P50/b > ratio
	}
	return out
}

func (s *Server) getLatency(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := newQuery(r)
	now := s.now().UTC()
	lq := LatencyQuery{TargetID: t.ID, To: q.time("to", now), AF: q.af()}
	lq.From = q.time("from", lq.To.Add(-24*time.Hour))
	if !lq.From.Before(lq.To) {
		q.fail("from", "must be before to")
	} else if lq.To.Sub(lq.From) > 366*24*time.Hour {
		q.fail("from", "range is longer than 366 days")
	}
	lq.Kind = measure.Kind(q.enum("kind", "identity", "identity", "dns", "ping", "trace"))
	g := q.grouping(s.cfg.Regions)
	opt := catchment.InflationOptions{Grouping: g, MinExtraMS: q.float("inflation_ms", 0), MinRatio: q.float("inflation_ratio", 0)}
	format := q.format("csv")
	if q.err != nil {
		s.writeError(w, r, q.err)
		return
	}
	rows, err := s.store.Latency(r.Context(), lq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	perSite, perProbe := latencyEntries(rows)
	rep := LatencyReport{Target: t.Name, From: lq.From, To: lq.To, Kind: lq.Kind, Group: string(g.By),
		Sites: nonNil(catchment.Latency(perSite, catchment.BySite)), Groups: nonNil(catchment.Latency(perProbe, g.Key)),
		Inflated: nonNil(catchment.Inflation(perProbe, opt))}
	rep.ByGroupSite = groupSiteMatrix(perSite, g, opt, rep.Inflated)
	rep.Total = catchment.Summarize("all", nil, 0)
	if all := catchment.Latency(perProbe, catchment.Grouping{}.Key); len(all) == 1 {
		rep.Total = all[0]
	}
	if lq.AF != 0 {
		rep.AF = &lq.AF
	}
	if format == "csv" {
		cw := newCSV(w, latencyCSVHeader)
		write := func(dim string, st catchment.LatencyStats) {
			_ = cw.Write([]string{dim, st.Key, itoa(st.Probes), itoa(st.Count), ftoa(st.Loss),
				fptoa(st.Min), fptoa(st.P50), fptoa(st.P90), fptoa(st.P99), fptoa(st.Max)})
		}
		write("total", rep.Total)
		for _, st := range rep.Sites {
			write("site", st)
		}
		for _, st := range rep.Groups {
			write(rep.Group, st)
		}
		cw.Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := writeLatencyReport(w, &rep); err != nil {
		s.log.Debug("api latency write", "err", err)
	}
}

// writeLatencyReport writes rep as encoding/json would, the inflated list
// (thousands of probes on a large target) with the hand-written encoder.
func writeLatencyReport(w io.Writer, rep *LatencyReport) error {
	js := newJSONStream(w)
	js.raw(`{"target":`)
	js.value(rep.Target)
	js.raw(`,"from":`)
	js.value(rep.From)
	js.raw(`,"to":`)
	js.value(rep.To)
	js.raw(`,"kind":`)
	js.value(rep.Kind)
	js.raw(`,"af":`)
	js.value(rep.AF)
	js.raw(`,"group":`)
	js.value(rep.Group)
	js.raw(`,"total":`)
	js.value(rep.Total)
	js.raw(`,"sites":`)
	js.value(rep.Sites)
	js.raw(`,"groups":`)
	js.value(rep.Groups)
	js.raw(`,"inflated":`)
	if rep.Inflated == nil {
		js.raw("null")
	} else {
		js.raw("[")
		for i := range rep.Inflated {
			js.b = js.b[:0]
			if i > 0 {
				js.b = append(js.b, ',')
			}
			js.b = appendInflatedJSON(js.b, &rep.Inflated[i])
			js.bytes(js.b)
		}
		js.raw("]")
	}
	js.raw(`,"by_group_site":`)
	js.value(rep.ByGroupSite)
	js.raw("}\n")
	return js.flush()
}

// latencyEntries turns per-(probe, site) aggregates into catchment entries:
// one per (probe, site) for per-site statistics, and one per probe (RTT
// weighted over its sites, site the one with most answers) for regional
// statistics and inflation. A probe with no answer in the range is
// unreachable.
func latencyEntries(rows []LatencyRow) (perSite, perProbe []catchment.Entry) {
	entry := func(l LatencyRow) catchment.Entry {
		e := catchment.Entry{Probe: l.Probe, Site: l.Site, RTT: l.RTT, Country: l.Country, Continent: l.Continent}
		if l.ASN != nil {
			e.ASN = *l.ASN
		}
		switch {
		case l.Samples == 0:
			e.State, e.Site, e.RTT = catchment.StateUnreachable, "", nil
		case l.Site == "":
			e.State = catchment.StateUnidentified
		default:
			e.State = catchment.StateSite
		}
		return e
	}
	// rows come ordered by probe; most probes have one row.
	perSite = make([]catchment.Entry, 0, len(rows))
	perProbe = make([]catchment.Entry, 0, len(rows))
	for i := 0; i < len(rows); {
		j := i
		best := rows[i]
		var sum float64
		n := 0
		for ; j < len(rows) && rows[j].Probe == rows[i].Probe; j++ {
			l := rows[j]
			perSite = append(perSite, entry(l))
			if l.RTT != nil {
				sum += *l.RTT * float64(l.Samples)
				n += l.Samples
			}
			if l.Samples > best.Samples || l.Samples == best.Samples && best.Site == "" {
				best = l
			}
		}
		merged := best
		merged.Samples = n
		if n > 0 {
			avg := sum / float64(n)
			merged.RTT = &avg
		}
		perProbe = append(perProbe, entry(merged))
		i = j
	}
	return perSite, perProbe
}

// ChangeReport is a page of a target's catchment changes over a range
// with the range's per-site summary and flapping probes.
type ChangeReport struct {
	Target     string          `json:"target"`
	From       time.Time       `json:"from"`
	To         time.Time       `json:"to"`
	Changes    []Change        `json:"changes"`
	NextCursor string          `json:"next_cursor,omitempty"`
	Sites      []SiteChanges   `json:"sites"`
	Flapping   []FlappingProbe `json:"flapping"`
}

// Change is one catchment change of a probe.
type Change struct {
	Probe        string    `json:"probe"`
	AF           int       `json:"af"`
	TS           time.Time `json:"ts"`
	FromState    *string   `json:"from_state"` // null on a probe's first observation
	FromSite     string    `json:"from_site,omitempty"`
	FromIdentity string    `json:"from_identity,omitempty"`
	ToState      string    `json:"to_state"`
	ToSite       string    `json:"to_site,omitempty"`
	ToIdentity   string    `json:"to_identity,omitempty"`
	RTT          *float64  `json:"rtt_ms"`
}

// SiteChanges is how many probes a site gained and lost in a range.
type SiteChanges struct {
	Site   string `json:"site"`
	Gained int    `json:"gained"`
	Lost   int    `json:"lost"`
	Net    int    `json:"net"`
}

// FlappingProbe is a track with at least flap_min changes in the range.
type FlappingProbe struct {
	Probe   string `json:"probe"`
	AF      int    `json:"af"`
	Changes int    `json:"changes"`
}

type changeCursor struct {
	TS    time.Time `json:"t"`
	Probe string    `json:"p"`
	AF    int       `json:"f"`
	Desc  bool      `json:"d,omitempty"` // the order the cursor was made for
}

func toChange(c ChangeRow) Change {
	out := Change{Probe: c.Probe, AF: c.AF, TS: c.TS, FromSite: c.FromSite, FromIdentity: c.FromIdentity,
		ToState: c.ToState, ToSite: c.ToSite, ToIdentity: c.ToIdentity, RTT: c.RTT}
	if c.FromState != "" {
		fs := c.FromState
		out.FromState = &fs
	}
	return out
}

// maxCSVChanges bounds one CSV export of changes.
const maxCSVChanges = 1_000_000

func (s *Server) getChanges(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := newQuery(r)
	now := s.now().UTC()
	cq := ChangeQuery{TargetID: t.ID, To: q.time("to", now), AF: q.af(), Limit: q.limit(), FlapMin: q.int("flap_min", 3, 1, 1000)}
	cq.From = q.time("from", cq.To.Add(-24*time.Hour))
	if !cq.From.Before(cq.To) {
		q.fail("from", "must be before to")
	}
	if p := q.str("probe"); p != "" {
		if !probeIDRE.MatchString(p) {
			q.fail("probe", "not a probe id")
		}
		cq.Probe = p
	}
	cq.Desc = q.enum("order", "asc", "asc", "desc") == "desc"
	cq.MovesOnly = q.movesOnly()
	var cur changeCursor
	if q.cursor(&cur) {
		if cur.Desc != cq.Desc {
			q.fail("cursor", "was made for the other order")
		}
		cq.AfterTS, cq.AfterProbe, cq.AfterAF = cur.TS, cur.Probe, cur.AF
	}
	format := q.format("csv")
	if q.err != nil {
		s.writeError(w, r, q.err)
		return
	}
	if format == "csv" {
		s.writeChangesCSV(w, r, cq)
		return
	}
	limit := cq.Limit
	cq.Limit++
	rows, err := s.store.Changes(r.Context(), cq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rep := ChangeReport{Target: t.Name, From: cq.From, To: cq.To, Changes: []Change{}, Sites: []SiteChanges{}, Flapping: []FlappingProbe{}}
	for i, c := range rows {
		if i == limit {
			last := rows[i-1]
			rep.NextCursor = encodeCursor(changeCursor{TS: last.TS, Probe: last.Probe, AF: last.AF, Desc: cq.Desc})
			break
		}
		rep.Changes = append(rep.Changes, toChange(c))
	}
	probes, sites, err := s.store.ChangeCounts(r.Context(), cq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, p := range probes {
		rep.Flapping = append(rep.Flapping, FlappingProbe(p))
	}
	for _, sc := range sites {
		rep.Sites = append(rep.Sites, SiteChanges{Site: sc.Site, Gained: sc.Gained, Lost: sc.Lost, Net: sc.Gained - sc.Lost})
	}
	slices.SortFunc(rep.Sites, func(a, b SiteChanges) int { return cmp.Compare(a.Site, b.Site) })
	writeJSON(w, http.StatusOK, rep)
}

// writeChangesCSV writes every change of the range (after the cursor, up
// to maxCSVChanges) in pages, so large exports do not sit in memory.
func (s *Server) writeChangesCSV(w http.ResponseWriter, r *http.Request, cq ChangeQuery) {
	cq.Limit = 5000
	var cw *csv.Writer
	written := 0
	for {
		rows, err := s.store.Changes(r.Context(), cq)
		if err != nil {
			if cw == nil {
				s.writeError(w, r, err)
			} else {
				s.log.Error("api changes csv", "err", err)
			}
			return
		}
		if cw == nil {
			cw = newCSV(w, changesCSVHeader)
		}
		for _, c := range rows {
			_ = cw.Write([]string{c.TS.Format(time.RFC3339Nano), c.Probe, itoa(c.AF), c.FromState, c.FromSite,
				c.FromIdentity, c.ToState, c.ToSite, c.ToIdentity, fptoa(c.RTT)})
		}
		written += len(rows)
		if len(rows) < cq.Limit || written >= maxCSVChanges {
			break
		}
		last := rows[len(rows)-1]
		cq.AfterTS, cq.AfterProbe, cq.AfterAF = last.TS, last.Probe, last.AF
	}
	cw.Flush()
}

// ChangeTimes lists the times a target's catchment changed, for a map's
// time control to step through.
type ChangeTimes struct {
	Target    string       `json:"target"`
	From      time.Time    `json:"from"`
	To        time.Time    `json:"to"`
	BucketSec int          `json:"bucket_sec"`
	Times     []ChangeTime `json:"times"`
	// Truncated is set when the range had more than limit buckets with
	// changes: ask again from the last one's ts.
	Truncated bool `json:"truncated"`
}

func (s *Server) getChangeTimes(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := newQuery(r)
	now := s.now().UTC()
	cq := ChangeTimesQuery{TargetID: t.ID, To: q.time("to", now), AF: q.af(), MovesOnly: q.movesOnly(),
		Bucket: q.duration("bucket", time.Minute, 24*time.Hour), Limit: q.int("limit", 10000, 1, 100000)}
	cq.From = q.time("from", cq.To.Add(-24*time.Hour))
	if !cq.From.Before(cq.To) {
		q.fail("from", "must be before to")
	} else if cq.To.Sub(cq.From) > 366*24*time.Hour {
		q.fail("from", "range is longer than 366 days")
	}
	if cq.Bucket < time.Minute || cq.Bucket%time.Minute != 0 {
		q.fail("bucket", "want whole minutes, at least 1m")
	}
	if q.err != nil {
		s.writeError(w, r, q.err)
		return
	}
	limit := cq.Limit
	cq.Limit++
	times, err := s.store.ChangeTimes(r.Context(), cq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rep := ChangeTimes{Target: t.Name, From: cq.From, To: cq.To, BucketSec: int(cq.Bucket / time.Second), Times: nonNil(times)}
	if len(rep.Times) > limit {
		rep.Times, rep.Truncated = rep.Times[:limit], true
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) getUnmapped(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ids, err := s.store.Unmapped(r.Context(), t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(ids))
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func itoa(n int) string     { return strconv.Itoa(n) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
func fptoa(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', 3, 64)
}
