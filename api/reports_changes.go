package api

// Catchment changes, the times they happened and unmapped identities:
// GET /targets/{name}/changes, /change-times and /unmapped.

import (
	"cmp"
	"net/http"
	"slices"
	"time"
)

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

func (s *Server) getChanges(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
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
		return nil, q.err
	}
	if format == "csv" {
		return stream(func(w http.ResponseWriter) { s.writeChangesCSV(w, r, cq) }), nil
	}
	limit := cq.Limit
	cq.Limit++
	rows, err := s.store.Changes(r.Context(), cq)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	for _, p := range probes {
		rep.Flapping = append(rep.Flapping, FlappingProbe(p))
	}
	for _, sc := range sites {
		rep.Sites = append(rep.Sites, SiteChanges{Site: sc.Site, Gained: sc.Gained, Lost: sc.Lost, Net: sc.Gained - sc.Lost})
	}
	slices.SortFunc(rep.Sites, func(a, b SiteChanges) int { return cmp.Compare(a.Site, b.Site) })
	return rep, nil
}

// writeChangesCSV writes every change of the range (after the cursor, up
// to maxCSVChanges) in pages, so large exports do not sit in memory.
func (s *Server) writeChangesCSV(w http.ResponseWriter, r *http.Request, cq ChangeQuery) {
	cq.Limit = 5000
	var cw *csvWriter
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

func (s *Server) getChangeTimes(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
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
		return nil, q.err
	}
	limit := cq.Limit
	cq.Limit++
	times, err := s.store.ChangeTimes(r.Context(), cq)
	if err != nil {
		return nil, err
	}
	rep := ChangeTimes{Target: t.Name, From: cq.From, To: cq.To, BucketSec: int(cq.Bucket / time.Second), Times: nonNil(times)}
	if len(rep.Times) > limit {
		rep.Times, rep.Truncated = rep.Times[:limit], true
	}
	return rep, nil
}

func (s *Server) getUnmapped(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	ids, err := s.store.Unmapped(r.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	return listOf(ids), nil
}
