package store

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// resultPage is how many rows Results reads per query when streaming: each
// page is its own short query, so a slow consumer never holds a snapshot
// (and vacuum) back for the whole export.
const resultPage = 5000

// DefaultResultLimit is ResultPage's page size when the query sets none.
const DefaultResultLimit = 1000

// where builds the filter of q after the keyset position.
func (q ResultQuery) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.TargetID != 0 {
		add("target_id = ?", q.TargetID)
	}
	if q.Probe != "" {
		add("probe_id = ?", q.Probe)
	}
	if q.Kind != "" {
		add("kind = ?", string(q.Kind))
	}
	if !q.From.IsZero() {
		add("ts >= ?", q.From)
	}
	if !q.To.IsZero() {
		add("ts < ?", q.To)
	}
	if !q.AfterTS.IsZero() {
		args = append(args, q.AfterTS, [16]byte(q.AfterID))
		conds = append(conds, fmt.Sprintf("(ts, id) > ($%d, $%d)", len(args)-1, len(args)))
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// queryResults runs one page of q (limit rows) and calls fn for each row
// with its keyset position, payload and raw replies.
func (db *DB) queryResults(ctx context.Context, q ResultQuery, limit int, fn func(ts time.Time, id measure.UUID, probe string, payload []byte, raw [][]byte) error) (int, error) {
	where, args := q.where()
	args = append(args, limit)
	rows, err := db.pool.Query(ctx, `SELECT ts, id, probe_id, payload, raw FROM results`+where+
		` ORDER BY ts, id LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var ts time.Time
		var id [16]byte
		var probe string
		var payload []byte
		var raw [][]byte
		if err := rows.Scan(&ts, &id, &probe, &payload, &raw); err != nil {
			return n, err
		}
		n++
		if err := fn(ts.UTC(), id, probe, payload, raw); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

// StreamResults calls fn for each result matching q in (ts, id) order,
// decoded and with its raw DNS replies restored (for NDJSON export), and
// stops early when fn returns an error, which StreamResults returns
// unwrapped. q.Limit 0 means no limit; zero From/To/AfterTS mean unbounded.
// Large ranges are read in pages of a few thousand rows, each its own
// query, so a slow consumer does not hold one snapshot open for the whole
// export.
func (db *DB) StreamResults(ctx context.Context, q ResultQuery, fn func(*measure.Result) error) error {
	remaining := q.Limit
	var fnErr error
	for {
		page := resultPage
		if q.Limit > 0 && remaining < page {
			page = remaining
		}
		if page == 0 {
			return nil
		}
		n, err := db.queryResults(ctx, q, page, func(ts time.Time, id measure.UUID, probe string, payload []byte, raw [][]byte) error {
			q.AfterTS, q.AfterID = ts, id
			r, err := DecodeResult(payload, raw)
			if err != nil {
				return fmt.Errorf("result %s: %w", id, err)
			}
			if r.Probe == "" {
				r.Probe = probe
			}
			fnErr = fn(r)
			return fnErr
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return fmt.Errorf("read results: %w", err)
		}
		if n < page {
			return nil
		}
		remaining -= n
	}
}

// ResultPage returns up to q.Limit results (0 means DefaultResultLimit)
// matching q in (ts, id) order, decoded, and the query for the next page,
// nil when there is none.
func (db *DB) ResultPage(ctx context.Context, q ResultQuery) ([]*measure.Result, *ResultQuery, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultResultLimit
	}
	out := make([]*measure.Result, 0, min(limit, 1024))
	var lastTS time.Time
	var lastID measure.UUID
	n, err := db.queryResults(ctx, q, limit+1, func(ts time.Time, id measure.UUID, probe string, payload []byte, raw [][]byte) error {
		if len(out) == limit {
			return nil // the extra row only tells there is a next page
		}
		r, err := DecodeResult(payload, raw)
		if err != nil {
			return fmt.Errorf("result %s: %w", id, err)
		}
		if r.Probe == "" {
			r.Probe = probe
		}
		out = append(out, r)
		lastTS, lastID = ts, id
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read results: %w", err)
	}
	if n <= limit {
		return out, nil, nil
	}
	next := q
	next.AfterTS, next.AfterID = lastTS, lastID
	return out, &next, nil
}

// LatestCatchment returns the current catchment state of every track of a
// target, ordered by probe and address family.
func (db *DB) LatestCatchment(ctx context.Context, targetID int) ([]catchment.Latest, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT target_id, probe_id, af, state, site, identity, rtt_ms, observed_at, since, result_id, source, source_at
		FROM catchment_latest WHERE target_id = $1 ORDER BY probe_id, af`, targetID)
	if err != nil {
		return nil, fmt.Errorf("latest catchment: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catchment.Latest, error) { return scanLatest(r) })
	if err != nil {
		return nil, fmt.Errorf("latest catchment: %w", err)
	}
	return out, nil
}

// TrackChanges returns the change events of one track in time order.
func (db *DB) TrackChanges(ctx context.Context, k catchment.Key) ([]catchment.Change, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT ts, from_state, from_site, from_identity, from_rtt_ms, from_ts, to_state, to_site, to_identity, to_rtt_ms, result_id
		FROM catchment_changes WHERE target_id = $1 AND probe_id = $2 AND af = $3 ORDER BY ts`, k.Target, k.Probe, k.AF)
	if err != nil {
		return nil, fmt.Errorf("track changes: %w", err)
	}
	defer rows.Close()
	var out []catchment.Change
	for rows.Next() {
		c := catchment.Change{Key: k}
		var fromState, fromSite, fromIdent, toSite, toIdent *string
		var fromRTT, toRTT *float32
		var fromTS *time.Time
		var toState string
		var id [16]byte
		if err := rows.Scan(&c.Time, &fromState, &fromSite, &fromIdent, &fromRTT, &fromTS, &toState, &toSite, &toIdent, &toRTT, &id); err != nil {
			return nil, fmt.Errorf("track changes: %w", err)
		}
		c.Time, c.ResultID = c.Time.UTC(), id
		c.To = catchment.Latest{Key: k, State: catchment.State(toState), Site: deref(toSite), Identity: deref(toIdent), RTT: f64(toRTT), ObservedAt: c.Time, ResultID: id}
		if fromState != nil {
			c.From = &catchment.Latest{Key: k, State: catchment.State(*fromState), Site: deref(fromSite), Identity: deref(fromIdent), RTT: f64(fromRTT)}
			if fromTS != nil {
				c.From.ObservedAt = fromTS.UTC()
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("track changes: %w", err)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// f64 widens a stored real. Infinity and NaN (stored before results were
// range-checked, from RTTs such as 1.7e308) read as unknown: no report
// should compute with them or fail to encode them.
func f64(f *float32) *float64 {
	if f == nil || !finite32(*f) {
		return nil
	}
	v := float64(*f)
	return &v
}

func finite32(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }
