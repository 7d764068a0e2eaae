package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/anycatch/anycatch/census"
)

// CensusStore is what the census endpoints need (the service-side
// catchment census, docs/census.md). A nil CensusStore answers them with
// unavailable.
type CensusStore interface {
	CensusConfig(ctx context.Context, targetID int) (CensusConfig, error)
	SetCensusConfig(ctx context.Context, c CensusConfig) error
	// IssueSiteToken binds a token hash to a target's site (invalid when
	// the census is not enabled, not found for an unknown site).
	IssueSiteToken(ctx context.Context, targetID int, site string, hash [32]byte) error
	CreateCensusRound(ctx context.Context, r CensusRound) (CensusRound, error)
	// ListCensusRounds returns a target's latest rounds, newest first.
	ListCensusRounds(ctx context.Context, targetID, limit int) ([]CensusRound, error)
	GetCensusRound(ctx context.Context, targetID int, id int64) (CensusRound, error)
	CensusReplies(ctx context.Context, roundID int64) ([]CensusReply, error)
	// CensusSummary aggregates a round where it is stored (rounds hold up
	// to millions of replies), as census.Summarize would.
	CensusSummary(ctx context.Context, roundID int64) (census.Summary, error)
	// CensusChanges returns at most limit prefixes whose site differs from
	// round from to round to, in prefix order, and how many differ.
	CensusChanges(ctx context.Context, from, to int64, limit int) ([]census.Move, int, error)
}

// CensusConfig is a target's census opt-in.
type CensusConfig struct {
	TargetID int  `json:"-"`
	Enabled  bool `json:"enabled"`
	MaxPPS   int  `json:"max_pps"`
}

// CensusRound is one census round (the MAC secret is never published).
type CensusRound struct {
	ID        int64     `json:"id"`
	TargetID  int       `json:"-"`
	Sender    string    `json:"sender"`
	Hitlist   string    `json:"hitlist"`
	RatePPS   int       `json:"rate_pps"`
	Prefix4   int       `json:"prefix4"`
	Prefix6   int       `json:"prefix6"`
	Secret    []byte    `json:"-"`
	Start     time.Time `json:"start"`
	Closes    time.Time `json:"closes"`
	LateUntil time.Time `json:"late_until"`
}

// CensusReply is one stored reply of a round.
type CensusReply struct {
	Addr     netip.Addr
	Prefix   netip.Prefix
	Site     string
	RTTMS    *float64
	Received time.Time
	Late     bool
	ASN      *int64
	Country  string
	Lat, Lon *float64
}

var errNoCensus = &Error{Code: CodeUnavailable, Message: "this server has no census store"}

var hitlistNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// censusTarget resolves {target} for the census endpoints, which need a
// census store.
func (s *Server) censusTarget(r *http.Request) (Target, error) {
	if s.cfg.Census == nil {
		return Target{}, errNoCensus
	}
	return s.target(r)
}

// putCensus opts a target in or out of the census and sets its rate
// ceiling.
func (s *Server) putCensus(r *http.Request) (any, error) {
	t, err := s.censusTarget(r)
	if err != nil {
		return nil, err
	}
	var in struct {
		Enabled *bool `json:"enabled"`
		MaxPPS  *int  `json:"max_pps"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	c, err := s.cfg.Census.CensusConfig(r.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	if in.Enabled != nil {
		c.Enabled = *in.Enabled
	}
	if in.MaxPPS != nil {
		if *in.MaxPPS < 1 || *in.MaxPPS > census.HardMaxPPS {
			return nil, invalid("max_pps", "want 1 to %d echo requests per second", census.HardMaxPPS)
		}
		c.MaxPPS = *in.MaxPPS
	}
	c.TargetID = t.ID
	if err := s.cfg.Census.SetCensusConfig(r.Context(), c); err != nil {
		return nil, err
	}
	return c, nil
}

// createSiteToken issues the one-time token an anycatch-site agent
// enrolls with for one site of the target (shown once).
func (s *Server) createSiteToken(r *http.Request) (any, error) {
	t, err := s.censusTarget(r)
	if err != nil {
		return nil, err
	}
	site, err := siteParam(r)
	if err != nil {
		return nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	secret := "acs_" + base64.RawURLEncoding.EncodeToString(raw[:])
	if err := s.cfg.Census.IssueSiteToken(r.Context(), t.ID, site, sha256.Sum256([]byte(secret))); err != nil {
		return nil, err
	}
	return created(map[string]string{"site": site, "token": secret}), nil
}

// createCensusRound starts a round now: the sender site's agent picks it
// up on its next schedule poll (about 2 s).
func (s *Server) createCensusRound(r *http.Request) (any, error) {
	t, err := s.censusTarget(r)
	if err != nil {
		return nil, err
	}
	var in struct {
		Sender     string `json:"sender"`
		Hitlist    string `json:"hitlist"`
		RatePPS    int    `json:"rate_pps"`
		Duration   string `json:"duration"`    // default 10m
		LateWindow string `json:"late_window"` // default 1h
		Prefix4    int    `json:"prefix4"`     // default 24
		Prefix6    int    `json:"prefix6"`     // default 48
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	dur := func(param, v string, def time.Duration) (time.Duration, error) {
		if v == "" {
			return def, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 7*24*time.Hour {
			return 0, invalid(param, "want a duration from 1s to 168h")
		}
		return d, nil
	}
	d, err := dur("duration", in.Duration, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	late, err := dur("late_window", in.LateWindow, time.Hour)
	if err != nil {
		return nil, err
	}
	rd := CensusRound{TargetID: t.ID, Sender: in.Sender, Hitlist: in.Hitlist, RatePPS: in.RatePPS,
		Prefix4: cmpOr(in.Prefix4, 24), Prefix6: cmpOr(in.Prefix6, 48)}
	switch {
	case !siteCodeRE.MatchString(in.Sender):
		return nil, invalid("sender", "want the code of one of the target's sites")
	case !hitlistNameRE.MatchString(in.Hitlist):
		return nil, invalid("hitlist", "want a file name in the sender's hitlist directory (letters, digits, '.', '_', '-')")
	case in.RatePPS < 0 || in.RatePPS > census.HardMaxPPS:
		return nil, invalid("rate_pps", "want 1 to %d", census.HardMaxPPS)
	case rd.Prefix4 < 8 || rd.Prefix4 > 32:
		return nil, invalid("prefix4", "want 8 to 32")
	case rd.Prefix6 < 16 || rd.Prefix6 > 128:
		return nil, invalid("prefix6", "want 16 to 128")
	}
	if rd.RatePPS == 0 {
		rd.RatePPS = census.DefaultPPS
	}
	rd.Secret = make([]byte, census.SecretLen)
	if _, err := rand.Read(rd.Secret); err != nil {
		return nil, err
	}
	rd.Start = s.now().UTC()
	rd.Closes = rd.Start.Add(d)
	rd.LateUntil = rd.Closes.Add(late)
	rd, err = s.cfg.Census.CreateCensusRound(r.Context(), rd)
	if err != nil {
		return nil, err
	}
	return created(rd), nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (s *Server) listCensusRounds(r *http.Request) (any, error) {
	t, err := s.censusTarget(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	limit := q.int("limit", 50, 1, 1000)
	if q.err != nil {
		return nil, q.err
	}
	rs, err := s.cfg.Census.ListCensusRounds(r.Context(), t.ID, limit)
	if err != nil {
		return nil, err
	}
	return listOf(rs), nil
}

// CensusReport is the census of one round.
type CensusReport struct {
	Target   string         `json:"target"`
	Round    CensusRound    `json:"round"`
	Summary  census.Summary `json:"summary"`
	Previous *int64         `json:"previous_round"` // the round changes compare with
	Changed  int            `json:"changed"`        // prefixes whose site differs from the previous round
	Changes  []census.Move  `json:"changes"`        // the first changes_limit of them, by prefix
	Prefixes []CensusPrefix `json:"prefixes,omitempty"`
}

// CensusPrefix is one prefix's catchment in a round.
type CensusPrefix struct {
	Prefix  string   `json:"prefix"`
	Site    string   `json:"site"` // codes joined by "+" when replies reached several sites
	ASN     *int64   `json:"asn,omitempty"`
	Country string   `json:"country,omitempty"`
	RTTMS   *float64 `json:"rtt_ms,omitempty"`
	Late    bool     `json:"late,omitempty"`
}

// getCensus reports a round's census: per site prefix counts, by ASN and
// country, changes against the previous round (or ?compare=ID), as JSON,
// CSV (one row per reply) or GeoJSON (centroids per site and country).
func (s *Server) getCensus(r *http.Request) (any, error) {
	t, err := s.censusTarget(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	format := q.format("csv", "geojson")
	withPrefixes := q.bool("prefixes", false)
	changesLimit := q.int("changes_limit", 1000, 0, 1_000_000)
	roundID := int64(q.int("round", 0, 0, 1<<62))
	compareID := int64(q.int("compare", 0, 0, 1<<62))
	if q.err != nil {
		return nil, q.err
	}
	ctx := r.Context()
	rd, prev, err := s.censusRounds(ctx, t, roundID, compareID)
	if err != nil {
		return nil, err
	}
	var prefixes []CensusPrefix
	if format != "json" || withPrefixes {
		reps, err := s.cfg.Census.CensusReplies(ctx, rd.ID)
		if err != nil {
			return nil, err
		}
		switch format {
		case "csv":
			return stream(func(w http.ResponseWriter) { writeCensusCSV(w, reps) }), nil
		case "geojson":
			return stream(func(w http.ResponseWriter) { writeCensusGeoJSON(w, rd, reps) }), nil
		}
		prefixes = censusPrefixes(reps)
	}
	rep := CensusReport{Target: t.Name, Round: rd, Changes: []census.Move{}, Prefixes: prefixes}
	if rep.Summary, err = s.cfg.Census.CensusSummary(ctx, rd.ID); err != nil {
		return nil, err
	}
	if prev != nil {
		rep.Previous = &prev.ID
		mv, n, err := s.cfg.Census.CensusChanges(ctx, prev.ID, rd.ID, changesLimit)
		if err != nil {
			return nil, err
		}
		rep.Changed = n
		if mv != nil {
			rep.Changes = mv
		}
	}
	return rep, nil
}

// censusRounds returns the round a census report is of (roundID, or the
// newest) and the one its changes compare with (compareID, or the newest
// before it; nil when there is none).
func (s *Server) censusRounds(ctx context.Context, t Target, roundID, compareID int64) (CensusRound, *CensusRound, error) {
	var rd CensusRound
	var prev *CensusRound
	if roundID == 0 {
		rs, err := s.cfg.Census.ListCensusRounds(ctx, t.ID, 2)
		if err != nil {
			return rd, nil, err
		}
		if len(rs) == 0 {
			return rd, nil, notFound("census round of target " + t.Name)
		}
		rd = rs[0]
		if len(rs) > 1 && compareID == 0 {
			prev = &rs[1]
		}
	} else {
		var err error
		if rd, err = s.censusRound(ctx, t, roundID); err != nil {
			return rd, nil, err
		}
		if compareID == 0 {
			// The previous round is the newest one before this.
			rs, err := s.cfg.Census.ListCensusRounds(ctx, t.ID, 1000)
			if err != nil {
				return rd, nil, err
			}
			for i := range rs {
				if rs[i].ID < rd.ID {
					prev = &rs[i]
					break
				}
			}
		}
	}
	if compareID != 0 {
		p, err := s.censusRound(ctx, t, compareID)
		if err != nil {
			return rd, nil, err
		}
		prev = &p
	}
	return rd, prev, nil
}

func (s *Server) censusRound(ctx context.Context, t Target, id int64) (CensusRound, error) {
	rd, err := s.cfg.Census.GetCensusRound(ctx, t.ID, id)
	if errors.Is(err, ErrNotFound) {
		err = notFound("census round " + strconv.FormatInt(id, 10))
	}
	return rd, err
}

func censusRows(reps []CensusReply) []census.Row {
	rows := make([]census.Row, len(reps))
	for i, x := range reps {
		rows[i] = census.Row{Prefix: x.Prefix, Site: x.Site, Country: x.Country, Late: x.Late, RTTMS: x.RTTMS}
		if x.ASN != nil {
			rows[i].ASN = *x.ASN
		}
	}
	return rows
}

// censusPrefixes lists each prefix once with its site(s); the RTT is the
// sender's, when it received the reply itself.
func censusPrefixes(reps []CensusReply) []CensusPrefix {
	sites := census.Catchment(censusRows(reps))
	byPrefix := map[netip.Prefix]*CensusPrefix{}
	var order []netip.Prefix
	for _, x := range reps {
		p := byPrefix[x.Prefix]
		if p == nil {
			p = &CensusPrefix{Prefix: x.Prefix.String(), Site: sites[x.Prefix], ASN: x.ASN, Country: x.Country, Late: x.Late}
			byPrefix[x.Prefix] = p
			order = append(order, x.Prefix)
		}
		if x.RTTMS != nil {
			p.RTTMS = x.RTTMS
		}
	}
	slices.SortFunc(order, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	out := make([]CensusPrefix, len(order))
	for i, p := range order {
		out[i] = *byPrefix[p]
	}
	return out
}

// censusCSVHeader: add columns only at the end.
var censusCSVHeader = []string{"prefix", "addr", "site", "asn", "country", "rtt_ms", "late", "received"}

func writeCensusCSV(w http.ResponseWriter, reps []CensusReply) {
	cw := newCSV(w, censusCSVHeader)
	for _, x := range reps {
		asn, rtt := "", ""
		if x.ASN != nil {
			asn = strconv.FormatInt(*x.ASN, 10)
		}
		if x.RTTMS != nil {
			rtt = strconv.FormatFloat(*x.RTTMS, 'f', 3, 64)
		}
		_ = cw.Write([]string{x.Prefix.String(), x.Addr.String(), x.Site, asn, x.Country, rtt,
			strconv.FormatBool(x.Late), x.Received.UTC().Format(time.RFC3339Nano)})
	}
	cw.Flush()
}

// writeCensusGeoJSON writes one Point per (site, country): the centroid of
// the geolocated prefixes of that site in that country, with their count.
// Prefixes without a location are left out (count them in the JSON).
func writeCensusGeoJSON(w http.ResponseWriter, rd CensusRound, reps []CensusReply) {
	type key struct{ site, country string }
	type acc struct {
		lat, lon float64
		n        int
		seen     map[netip.Prefix]bool
	}
	accs := map[key]*acc{}
	var keys []key
	for _, x := range reps {
		if x.Lat == nil || x.Lon == nil {
			continue
		}
		k := key{x.Site, x.Country}
		a := accs[k]
		if a == nil {
			a = &acc{seen: map[netip.Prefix]bool{}}
			accs[k] = a
			keys = append(keys, k)
		}
		if a.seen[x.Prefix] {
			continue
		}
		a.seen[x.Prefix] = true
		a.lat += *x.Lat
		a.lon += *x.Lon
		a.n++
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.site, b.site), cmp.Compare(a.country, b.country))
	})
	type props struct {
		Site     string `json:"site"`
		Country  string `json:"country,omitempty"`
		Prefixes int    `json:"prefixes"`
		Round    int64  `json:"round"`
	}
	type feature struct {
		Type     string `json:"type"`
		Geometry struct {
			Type        string     `json:"type"`
			Coordinates [2]float64 `json:"coordinates"`
		} `json:"geometry"`
		Properties props `json:"properties"`
	}
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{Type: "FeatureCollection", Features: []feature{}}
	for _, k := range keys {
		a := accs[k]
		f := feature{Type: "Feature", Properties: props{Site: k.site, Country: k.country, Prefixes: a.n, Round: rd.ID}}
		f.Geometry.Type = "Point"
		f.Geometry.Coordinates = [2]float64{round4(a.lon / float64(a.n)), round4(a.lat / float64(a.n))}
		fc.Features = append(fc.Features, f)
	}
	writeJSONAs(w, http.StatusOK, "application/geo+json", fc)
}

func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }
