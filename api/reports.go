package api

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/anycatch/anycatch/catchment"
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
	// LatestDataAt is when the target's newest result is from (absent
	// when it has none): a report "now" of a target holding only imported
	// history is empty, and this says which at= shows its data.
	LatestDataAt *time.Time `json:"latest_data_at,omitempty"`
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

// catchmentAggregates returns the catchment of all rows and per group of
// g, with empty (not nil) site lists as a report publishes them.
func catchmentAggregates(rows []CatchmentRow, g catchment.Grouping) (total catchment.Group, groups []catchment.Group) {
	total, groups = catchment.AggregateTracks(rows, g)
	groups = nonNil(groups)
	for i := range groups {
		groups[i].Sites = nonNil(groups[i].Sites)
	}
	total.Sites = nonNil(total.Sites)
	return total, groups
}

func (s *Server) getCatchment(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	cq := s.catchmentQuery(q, t)
	g := q.grouping(s.cfg.Regions)
	format := q.format("csv", "geojson")
	withProbes := q.bool("probes", true)
	if q.err != nil {
		return nil, q.err
	}
	rows, err := s.store.Catchment(r.Context(), cq)
	if err != nil {
		return nil, err
	}
	// The per-probe list is needed for the map (JSON, GeoJSON) only.
	var probes *publishedProbes
	if withProbes && format != "csv" || format == "geojson" {
		probes = &publishedProbes{rows: rows, blur: s.cfg.Blur}
	}
	if format == "geojson" {
		return stream(func(w http.ResponseWriter) { writeGeoJSON(w, probes) }), nil
	}
	total, groups := catchmentAggregates(rows, g)
	if format == "csv" {
		return stream(func(w http.ResponseWriter) { writeCatchmentCSV(w, append([]catchment.Group{total}, groups...)) }), nil
	}
	sites, err := s.store.ListSites(r.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	latest, err := s.latestDataAt(r.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	rep := CatchmentReport{Target: t.Name, At: cq.At, WindowSec: int(cq.Window / time.Second), Group: string(g.By),
		Sites: nonNil(sites), Total: total, Groups: groups, LatestDataAt: latest}
	if cq.AF != 0 {
		rep.AF = &cq.AF
	}
	return stream(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if err := writeCatchmentReport(w, &rep, probes); err != nil {
			s.log.Debug("api catchment write", "err", err)
		}
	}), nil
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
	if rep.LatestDataAt != nil {
		js.raw(`,"latest_data_at":`)
		js.value(rep.LatestDataAt)
	}
	js.raw("}\n")
	return js.flush()
}

func (s *Server) getCatchmentGeoJSON(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	cq := s.catchmentQuery(q, t)
	if q.err != nil {
		return nil, q.err
	}
	rows, err := s.store.Catchment(r.Context(), cq)
	if err != nil {
		return nil, err
	}
	return stream(func(w http.ResponseWriter) { writeGeoJSON(w, &publishedProbes{rows: rows, blur: s.cfg.Blur}) }), nil
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
