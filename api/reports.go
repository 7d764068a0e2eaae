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
	Source     string          `json:"source,omitempty"` // evidence that named the site ("hostname_bind", "http_header:cf-ray", "trace_hop", …)
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

// publishedProbes are a report's probes as the store returned them, turned
// into CatchmentProbes (blurred) one at a time as they are written: a
// report of 10,000 probes need not hold a second copy of them.
type publishedProbes struct {
	rows []CatchmentRow
	blur func(probe string, lat, lon float64) (float64, float64) // Config.Blur
}

// probe returns row i as published, its position (if known) in pos.
func (pp *publishedProbes) probe(i int, pos *[2]float64) CatchmentProbe {
	c := &pp.rows[i]
	p := CatchmentProbe{Probe: c.Probe, AF: c.AF, State: c.State, Site: c.Site, Identity: c.Identity, Source: c.Source,
		RTT: c.RTT, ObservedAt: c.ObservedAt, Since: c.Since, Country: c.Country, Continent: c.Continent, ASN: c.ASN}
	if c.Lat != nil && c.Lon != nil { // as Server.blur
		pos[0], pos[1] = pp.blur(c.Probe, *c.Lat, *c.Lon)
		p.Lat, p.Lon = &pos[0], &pos[1]
	}
	return p
}

// catchmentEntry is c as an aggregation entry.
func catchmentEntry(c *CatchmentRow) catchment.Entry {
	e := catchment.Entry{Probe: c.Probe, State: c.State, Site: c.Site, Identity: c.Identity, RTT: c.RTT,
		ObservedAt: c.ObservedAt, Country: c.Country, Continent: c.Continent}
	if c.ASN != nil {
		e.ASN = *c.ASN
	}
	return e
}

// catchmentAggregates returns the catchment of all rows and per group of
// g, with empty (not nil) site lists as a report publishes them.
func catchmentAggregates(rows []CatchmentRow, g catchment.Grouping) (total catchment.Group, groups []catchment.Group) {
	agg := catchment.NewAggregator(g)
	agg.Grow(len(rows))
	for i := range rows {
		e := catchmentEntry(&rows[i])
		agg.Add(&e)
	}
	groups = nonNil(agg.Groups())
	for i := range groups {
		groups[i].Sites = nonNil(groups[i].Sites)
	}
	total = agg.Total()
	total.Sites = nonNil(total.Sites)
	return total, groups
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
	rows, err := s.store.Catchment(r.Context(), cq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The per-probe list is needed for the map (JSON, GeoJSON) only.
	var probes *publishedProbes
	if withProbes && format != "csv" || format == "geojson" {
		probes = &publishedProbes{rows: rows, blur: s.cfg.Blur}
	}
	if format == "geojson" {
		writeGeoJSON(w, probes)
		return
	}
	total, groups := catchmentAggregates(rows, g)
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
		Sites: nonNil(sites), Total: total, Groups: groups}
	if cq.AF != 0 {
		rep.AF = &cq.AF
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := writeCatchmentReport(w, &rep, probes); err != nil {
		s.log.Debug("api catchment write", "err", err)
	}
}

// writeCatchmentReport writes rep as encoding/json would (field order of
// CatchmentReport) with probes (streamed) as its probes, in place of
// rep.Probes; without probes the probes member is left out.
func writeCatchmentReport(w io.Writer, rep *CatchmentReport, probes *publishedProbes) error {
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
	if probes != nil {
		js.raw(`,"probes":`)
		js.probes(probes, false)
	}
	js.raw(`,"total":`)
	object(js, &rep.Total, groupFinite, appendGroupJSON)
	js.raw(`,"groups":`)
	array(js, rep.Groups, groupFinite, appendGroupJSON)
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
	rows, err := s.store.Catchment(r.Context(), cq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeGeoJSON(w, &publishedProbes{rows: rows, blur: s.cfg.Blur})
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
func writeGeoJSON(w http.ResponseWriter, probes *publishedProbes) {
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

// siteCells are the cells of a latency report's group × site matrix: per
// (probe, site) input its cell, and per cell its group and site as
// published, in published order (by group, then site).
//
// A cell is what the key group "\x00" place names: cells are ordered by
// that key and it is split at its first NUL. Without a NUL in any group or
// place key, that is ordering and splitting (group, place), which is done
// directly; otherwise with the keys built.
type siteCells struct {
	ids           []int32 // per input
	group, site   []int32 // per cell: indexes into groups and sites
	groups, sites []string
	order         []int32 // cells, ordered
}

// newSiteCells numbers the cells of inputs in group groupKeys[groups[i]]
// and at place placeKeys[places[i]] (its [catchment.BySite] key); both key
// lists are distinct.
func newSiteCells(groups []int32, groupKeys []string, places []int32, placeKeys []string) *siteCells {
	if slices.ContainsFunc(groupKeys, hasNUL) || slices.ContainsFunc(placeKeys, hasNUL) {
		return siteCellsByKey(groups, groupKeys, places, placeKeys)
	}
	c := &siteCells{ids: make([]int32, len(groups)), groups: groupKeys, sites: placeKeys}
	cellOf := map[uint64]int32{}
	for i := range groups {
		id, ok := cellOf[pairKey(groups[i], places[i])]
		if !ok {
			id = int32(len(c.group))
			cellOf[pairKey(groups[i], places[i])] = id
			c.group, c.site = append(c.group, groups[i]), append(c.site, places[i])
		}
		c.ids[i] = id
	}
	// by place key, then (stably) by group key
	c.order = countingSort(countingSort(sequence(len(c.group)), c.site, ranks(placeKeys)), c.group, ranks(groupKeys))
	return c
}

// siteCellsByKey is newSiteCells building the key of each cell.
func siteCellsByKey(groups []int32, groupKeys []string, places []int32, placeKeys []string) *siteCells {
	c := &siteCells{ids: make([]int32, len(groups))}
	var keys, groupNames, siteNames catchment.KeyIndex
	cellOf := map[uint64]int32{}
	for i := range groups {
		id, ok := cellOf[pairKey(groups[i], places[i])]
		if !ok {
			key := groupKeys[groups[i]] + "\x00" + placeKeys[places[i]]
			id = keys.ID(key)
			if int(id) == len(c.group) { // not the key of another pair
				group, site, _ := strings.Cut(key, "\x00")
				c.group, c.site = append(c.group, groupNames.ID(group)), append(c.site, siteNames.ID(site))
			}
			cellOf[pairKey(groups[i], places[i])] = id
		}
		c.ids[i] = id
	}
	c.groups, c.sites = groupNames.Keys(), siteNames.Keys()
	c.order = sequence(len(c.group))
	slices.SortFunc(c.order, func(x, y int32) int { return cmp.Compare(keys.Keys()[x], keys.Keys()[y]) })
	return c
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// sequence returns 0, 1, ..., n-1.
func sequence(n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(i)
	}
	return s
}

// groupSiteMatrix publishes the cells with their statistics (by cell),
// with inflation flags from opt's thresholds and the per-probe inflated
// list.
func groupSiteMatrix(cells *siteCells, stats []catchment.LatencyStats, opt catchment.InflationOptions, inflated []catchment.Inflated) []GroupSiteLatency {
	// inflated lists probes by group and site name
	groupOf, siteOf := make(map[string]int32, len(cells.groups)), make(map[string]int32, len(cells.sites))
	for id, k := range cells.groups {
		groupOf[k] = int32(id)
	}
	for id, k := range cells.sites {
		siteOf[k] = int32(id)
	}
	cellOf := make(map[uint64]int32, len(cells.group))
	for c := range cells.group {
		cellOf[pairKey(cells.group[c], cells.site[c])] = int32(c)
	}
	nInflated := make([]int, len(cells.group))
	for i := range inflated {
		g, ok := groupOf[inflated[i].Group]
		s, ok2 := siteOf[inflated[i].Site]
		if ok && ok2 {
			if c, ok := cellOf[pairKey(g, s)]; ok {
				nInflated[c]++
			}
		}
	}
	out := make([]GroupSiteLatency, len(cells.order))
	best := make([]float64, len(cells.groups)) // a group's best site p50
	seen := make([]bool, len(cells.groups))
	for k, c := range cells.order {
		st := &stats[c]
		out[k] = GroupSiteLatency{Group: cells.groups[cells.group[c]], Site: cells.sites[cells.site[c]], Probes: st.Probes, Count: st.Count,
			Loss: st.Loss, Min: st.Min, P50: st.P50, P90: st.P90, P99: st.P99, Max: st.Max, InflatedProbes: nInflated[c]}
		if p50 := st.P50; p50 != nil && placeAnswers(out[k].Site) {
			if g := cells.group[c]; !seen[g] || *p50 < best[g] {
				best[g], seen[g] = *p50, true
			}
		}
	}
	extra, ratio := opt.MinExtraMS, opt.MinRatio
	if extra == 0 {
		extra = catchment.DefaultInflationMinExtraMS
	}
	if ratio == 0 {
		ratio = catchment.DefaultInflationMinRatio
	}
	for k, c := range cells.order {
		cell := &out[k]
		g := cells.group[c]
		if !seen[g] || cell.P50 == nil || best[g] <= 0 || !placeAnswers(cell.Site) {
			continue
		}
		cell.Inflated = *cell.P50-best[g] > extra && *cell.P50/best[g] > ratio
	}
	return out
}

// placeAnswers tells a site of the matrix from "unreachable" and unmapped
// "?identity" places, which no probe can be moved to.
func placeAnswers(site string) bool { return site != "unreachable" && !strings.HasPrefix(site, "?") }

func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// countingSort returns cells stably sorted by rank[id[c]] for each cell c,
// with 0 <= rank[i] < len(rank).
func countingSort(cells, id, rank []int32) []int32 {
	start := make([]int, len(rank)+1)
	for _, c := range cells {
		start[rank[id[c]]+1]++
	}
	for r := range rank {
		start[r+1] += start[r]
	}
	out := make([]int32, len(cells))
	for _, c := range cells {
		r := rank[id[c]]
		out[start[r]] = c
		start[r]++
	}
	return out
}

// ranks returns each key's position in sorted order.
func ranks(keys []string) []int32 {
	order := sequence(len(keys))
	slices.SortFunc(order, func(x, y int32) int { return cmp.Compare(keys[x], keys[y]) })
	rank := make([]int32, len(keys))
	for r, id := range order {
		rank[id] = int32(r)
	}
	return rank
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
	rep := latencyReport(rows, opt, format == "csv")
	rep.Target, rep.From, rep.To, rep.Kind = t.Name, lq.From, lq.To, lq.Kind
	if lq.AF != 0 {
		rep.AF = &lq.AF
	}
	if format == "csv" {
		writeLatencyCSV(w, &rep)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := writeLatencyReport(w, &rep); err != nil {
		s.log.Debug("api latency write", "err", err)
	}
}

// latencyReport computes a latency report's statistics from the store's
// per-(probe, site) rows: Group, Total, Sites and Groups, and unless
// csvOnly (the CSV has no more) Inflated and ByGroupSite, grouped by
// opt.Grouping with opt's inflation thresholds. The caller fills in the
// rest.
//
// Inputs are numbered by group and by place once, and every statistic is
// computed over those numbers and pointer-free samples
// ([catchment.LatencyByID], [catchment.LatencyPerID]), so no key string
// is built per input.
func latencyReport(rows []LatencyRow, opt catchment.InflationOptions, csvOnly bool) LatencyReport {
	g := opt.Grouping
	perSite, perProbe := latencyEntries(rows)
	groupIDs := catchment.NewGroupIndex(g)
	probeGroups := make([]int32, len(perProbe))
	probeSamples := make([]catchment.Sample, len(perProbe))
	for i := range perProbe {
		probeGroups[i] = groupIDs.ID(&perProbe[i])
		probeSamples[i] = perProbe[i].Sample()
	}
	// The per-site entries (rows) are only needed for their place and
	// group, so they are made one at a time.
	var placeIDs catchment.KeyIndex
	sitePlaces, siteGroups := make([]int32, len(rows)), make([]int32, len(rows))
	for i := range rows {
		e := latencyEntry(&rows[i], rows[i].Samples, rows[i].RTT)
		sitePlaces[i] = placeIDs.ID(catchment.BySite(e))
		siteGroups[i] = groupIDs.ID(&e)
	}
	rep := LatencyReport{Group: string(g.By),
		Sites:  nonNil(catchment.LatencyByID(perSite, sitePlaces, placeIDs.Keys())),
		Groups: nonNil(catchment.LatencyByID(probeSamples, probeGroups, groupIDs.Keys())),
		Total:  catchment.Summarize("all", nil, 0)}
	if len(perProbe) > 0 {
		rep.Total = catchment.LatencyByID(probeSamples, make([]int32, len(perProbe)), []string{"all"})[0]
	}
	if csvOnly {
		return rep
	}
	cells := newSiteCells(siteGroups, groupIDs.Keys(), sitePlaces, placeIDs.Keys())
	// Inflation groups like the report except that "all" means by
	// continent there.
	inflGroups, inflKeys := probeGroups, groupIDs.Keys()
	if g.By == catchment.GroupAll {
		cont := catchment.NewGroupIndex(catchment.Grouping{By: catchment.GroupContinent})
		inflGroups = make([]int32, len(perProbe))
		for i := range perProbe {
			inflGroups[i] = cont.ID(&perProbe[i])
		}
		inflKeys = cont.Keys()
	}
	rep.Inflated = nonNil(catchment.InflationByID(perProbe, inflGroups, inflKeys, opt))
	rep.ByGroupSite = groupSiteMatrix(cells, catchment.LatencyPerID(perSite, cells.ids, len(cells.group)), opt, rep.Inflated)
	return rep
}

// writeLatencyCSV writes the total, per-site and per-group rows of rep.
func writeLatencyCSV(w http.ResponseWriter, rep *LatencyReport) {
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
	object(js, &rep.Total, latencyStatsFinite, appendLatencyStatsJSON)
	js.raw(`,"sites":`)
	array(js, rep.Sites, latencyStatsFinite, appendLatencyStatsJSON)
	js.raw(`,"groups":`)
	array(js, rep.Groups, latencyStatsFinite, appendLatencyStatsJSON)
	js.raw(`,"inflated":`)
	if rep.Inflated == nil {
		js.raw("null")
	} else {
		js.raw("[")
		baselines := map[uint64]string{}
		for i := range rep.Inflated {
			if i > 0 {
				js.b = append(js.b, ',')
			}
			js.b = appendInflatedJSON(js.b, &rep.Inflated[i], baselines)
			js.spill()
		}
		js.raw("]")
	}
	js.raw(`,"by_group_site":`)
	array(js, rep.ByGroupSite, groupSiteFinite, appendGroupSiteJSON)
	js.raw("}\n")
	return js.flush()
}

// latencyEntries turns per-(probe, site) aggregates into latency inputs:
// one sample per (probe, site) for per-site statistics, and one entry per
// probe (RTT weighted over its sites, site the one with most answers) for
// regional statistics and inflation. A probe with no answer in the range
// is unreachable.
func latencyEntries(rows []LatencyRow) (perSite []catchment.Sample, perProbe []catchment.Entry) {
	// rows come ordered by probe; most probes have one row.
	probes := 0
	for i := range rows {
		if i == 0 || rows[i].Probe != rows[i-1].Probe {
			probes++
		}
	}
	perSite = make([]catchment.Sample, 0, len(rows))
	perProbe = make([]catchment.Entry, probes)
	means := make([]float64, probes) // the per-probe RTTs, in one allocation
	for i, k := 0, 0; i < len(rows); k++ {
		j := i
		best := &rows[i]
		var sum float64
		n := 0
		for ; j < len(rows) && rows[j].Probe == rows[i].Probe; j++ {
			l := &rows[j]
			e := latencyEntry(l, l.Samples, l.RTT)
			perSite = append(perSite, e.Sample())
			if l.RTT != nil {
				sum += *l.RTT * float64(l.Samples)
				n += l.Samples
			}
			if l.Samples > best.Samples || l.Samples == best.Samples && best.Site == "" {
				best = l
			}
		}
		rtt := best.RTT
		if n > 0 {
			means[k] = sum / float64(n)
			rtt = &means[k]
		}
		setLatencyEntry(&perProbe[k], best, n, rtt)
		i = j
	}
	return perSite, perProbe
}

// latencyEntry is the entry of l with samples answers of mean rtt.
func latencyEntry(l *LatencyRow, samples int, rtt *float64) catchment.Entry {
	var e catchment.Entry
	setLatencyEntry(&e, l, samples, rtt)
	return e
}

// setLatencyEntry sets the zero entry e to latencyEntry(l, samples, rtt),
// in place: perProbe is large.
func setLatencyEntry(e *catchment.Entry, l *LatencyRow, samples int, rtt *float64) {
	e.Probe, e.Country, e.Continent = l.Probe, l.Country, l.Continent
	if l.ASN != nil {
		e.ASN = *l.ASN
	}
	switch {
	case samples == 0:
		e.State = catchment.StateUnreachable
	case l.Site == "":
		e.State, e.RTT = catchment.StateUnidentified, rtt
	default:
		e.State, e.Site, e.RTT = catchment.StateSite, l.Site, rtt
	}
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
