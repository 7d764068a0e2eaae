package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/anycatch/anycatch/atlas"
	"github.com/anycatch/anycatch/measure"
)

type resultCursor struct {
	TS time.Time    `json:"t"`
	ID measure.UUID `json:"i"`
}

// resultsPage is a page of results; Data holds wire-format results (or
// Atlas-shaped ones for format=atlas, served as the bare array) exactly as
// stored.
type resultsPage struct {
	Data       []json.RawMessage `json:"data"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

func (s *Server) listResults(r *http.Request) (any, error) {
	q := newQuery(r)
	name := q.str("target")
	switch {
	case name == "":
		q.fail("target", "missing: results are listed per target")
	case !targetNameRE.MatchString(name):
		q.fail("target", "target names are 1-63 characters of a-z, 0-9, '.', '_' and '-'")
	}
	now := s.now().UTC()
	rq := ResultQuery{To: q.time("to", now)}
	rq.From = q.time("from", rq.To.Add(-24*time.Hour))
	if !rq.From.Before(rq.To) {
		q.fail("from", "must be before to")
	}
	if p := q.str("probe"); p != "" {
		if !probeIDRE.MatchString(p) {
			q.fail("probe", "not a probe id")
		}
		rq.Probe = p
	}
	if k := q.str("kind"); k != "" {
		kind, err := measure.ParseKind(k)
		if err != nil {
			q.fail("kind", "%v", err)
		}
		rq.Kind = kind
	}
	limit := q.limit()
	var cur resultCursor
	if q.cursor(&cur) {
		rq.AfterTS, rq.AfterID = cur.TS, cur.ID
	}
	format := q.format("ndjson", "atlas")
	if q.err != nil {
		return nil, q.err
	}
	t, err := s.store.GetTarget(r.Context(), name)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("target " + name)
	}
	if err != nil {
		return nil, err
	}
	rq.TargetID = t.ID
	if format == "ndjson" || format == "atlas" && strings.Contains(r.Header.Get("Accept"), formatTypes["ndjson"]) {
		atlasShape := format == "atlas"
		return stream(func(w http.ResponseWriter) { s.streamResults(w, r, rq, atlasShape) }), nil
	}
	rq.Limit = limit + 1
	page := resultsPage{Data: []json.RawMessage{}}
	var last *measure.Result
	err = s.store.StreamResults(r.Context(), rq, func(res *measure.Result) error {
		if len(page.Data) == limit {
			page.NextCursor = encodeCursor(resultCursor{TS: last.Time, ID: last.ID})
			return nil
		}
		var p []byte
		var err error
		if format == "atlas" {
			p, err = atlas.FromResult(res, "")
		} else {
			p, err = json.Marshal(res)
		}
		if err != nil {
			return fmt.Errorf("encode result %s: %w", res.ID, err)
		}
		page.Data = append(page.Data, p)
		last = res
		return nil
	})
	if err != nil {
		return nil, err
	}
	if format == "atlas" {
		// A plain JSON array, as Atlas serves and as Atlas tools and our
		// importer read; the next page's cursor is a header.
		rp := reply{status: http.StatusOK, body: page.Data}
		if page.NextCursor != "" {
			rp.header = http.Header{"X-Next-Cursor": {page.NextCursor}}
		}
		return rp, nil
	}
	return page, nil
}

// streamResults writes every result of the range after the cursor as
// NDJSON, flushing as it goes; memory stays constant however large the
// range. An error after the first line can only end the stream early.
// With atlas set each line is the Atlas-shaped result (format=atlas with
// Accept: application/x-ndjson), which the Atlas importer reads back.
func (s *Server) streamResults(w http.ResponseWriter, r *http.Request, rq ResultQuery, atlasShape bool) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher, _ := w.(http.Flusher)
	n := 0
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err := s.store.StreamResults(r.Context(), rq, func(res *measure.Result) error {
		if atlasShape {
			p, err := atlas.FromResult(res, "")
			if err != nil {
				return fmt.Errorf("encode result %s: %w", res.ID, err)
			}
			if _, err := w.Write(append(p, '\n')); err != nil {
				return err
			}
		} else if err := enc.Encode(res); err != nil {
			return err
		}
		if n++; n%1000 == 0 && flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err != nil {
		if n == 0 {
			s.writeError(w, r, err)
			return
		}
		s.log.Warn("api results stream ended early", "err", err, "written", n)
	}
}
