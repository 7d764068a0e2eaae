package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// stageDDL creates the per-connection staging table ingest copies into.
// ON COMMIT DELETE ROWS empties it at the end of every transaction, so it
// is created once per connection and reused without catalog churn.
const stageDDL = `CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
	ord integer NOT NULL, target_id integer NOT NULL, ts timestamptz NOT NULL, id uuid NOT NULL,
	probe_id text NOT NULL, kind text NOT NULL, msm text NOT NULL, af smallint NOT NULL, dst inet NOT NULL,
	rtt_ms real, loss real, identity text, site text, error text, payload json NOT NULL, raw bytea[], id_source text
) ON COMMIT DELETE ROWS`

var stageColumns = []string{"ord", "target_id", "ts", "id", "probe_id", "kind", "msm", "af", "dst",
	"rtt_ms", "loss", "identity", "site", "error", "payload", "raw", "id_source"}

const mergeSQL = `INSERT INTO results (target_id, ts, id, probe_id, kind, msm, af, dst, rtt_ms, loss, identity, site, error, payload, raw, id_source)
	SELECT target_id, ts, id, probe_id, kind, msm, af, dst, rtt_ms, loss, identity, site, error, payload, raw, id_source
	FROM ingest_stage
	ON CONFLICT DO NOTHING
	RETURNING target_id, id, ts`

// EncodeResult splits a result into its stored payload (the wire JSON
// without the raw DNS replies) and the raw replies, one element per DNS
// exchange (nil when the exchange has none; raw itself is nil when no
// exchange has any). DecodeResult reverses it. The payload is what
// encoding/json.Marshal writes, written without reflection.
func EncodeResult(r *measure.Result) (payload []byte, raw [][]byte, err error) {
	payload, err = measure.AppendResultWithoutRaw(make([]byte, 0, payloadSizeHint(r)), r)
	if err != nil {
		return nil, nil, fmt.Errorf("encode result %s: %w", r.ID, err)
	}
	if r.DNS != nil {
		for i := range r.DNS.Exchanges {
			if r.DNS.Exchanges[i].Raw == nil {
				continue
			}
			if raw == nil {
				raw = make([][]byte, len(r.DNS.Exchanges))
			}
			raw[i] = r.DNS.Exchanges[i].Raw
		}
	}
	return payload, raw, nil
}

// payloadSizeHint guesses the payload size of r from above for typical
// results, so that encoding it allocates once.
func payloadSizeHint(r *measure.Result) int {
	n := 256 + len(r.Measurement) + len(r.Probe) + len(r.Target) + len(r.Error)
	switch {
	case r.Ping != nil:
		n += 128 + 48*len(r.Ping.Replies)
	case r.DNS != nil:
		n += 64
		for i := range r.DNS.Exchanges {
			x := &r.DNS.Exchanges[i]
			n += 160 + len(x.QName) + len(x.NSID) + len(x.NSIDHex) + len(x.Error) + 8*len(x.Flags)
			for _, a := range x.Answers {
				n += 64 + len(a.Name) + len(a.Data)
			}
		}
	case r.Trace != nil:
		n += 160
		for _, h := range r.Trace.Hops {
			n += 24 + 96*len(h.Probes)
		}
	}
	return n
}

// DecodeResult rebuilds a result from its stored payload and raw replies.
// Its strings share one copy of payload.
func DecodeResult(payload []byte, raw [][]byte) (*measure.Result, error) {
	r := new(measure.Result)
	if err := measure.UnmarshalResult(payload, r); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	if r.DNS != nil {
		for i := range r.DNS.Exchanges {
			if i < len(raw) && raw[i] != nil {
				r.DNS.Exchanges[i].Raw = raw[i]
			}
		}
	}
	return r, nil
}

// stagedRow is one ResultRow encoded for COPY.
type stagedRow struct {
	dst     netip.Addr
	payload []byte
	raw     [][]byte
}

type resultKey struct {
	target int
	id     measure.UUID
	us     int64 // ts in microseconds, PostgreSQL's precision
}

func keyOf(target int, id measure.UUID, ts time.Time) resultKey {
	return resultKey{target, id, ts.UnixMicro()}
}

// IngestBatch stores rows and returns, for each, whether it was newly
// inserted (false: a result with the same target, id and time is already
// stored, or appears earlier in rows). Everything happens in one
// transaction that also advances catchment state for the new dns/identity
// rows (State != ""): when IngestBatch returns an error nothing was stored,
// and when it returns nil everything is committed.
//
// Concurrent calls are safe and use separate connections; batches that
// share catchment tracks serialize on those tracks' rows.
//
// Each row's Result must have Probe set and be valid (Result.Validate).
// An error wrapping ErrInvalid means the rows' content failed the batch
// (nothing was stored); a subset without the offending rows can commit.
func (db *DB) IngestBatch(ctx context.Context, rows []ResultRow) ([]bool, error) {
	if len(rows) == 0 {
		return []bool{}, nil
	}
	staged := make([]stagedRow, len(rows))
	var days []time.Time
	var lastDay time.Time
	for i := range rows {
		r := rows[i].Result
		if r == nil || r.Probe == "" {
			return nil, fmt.Errorf("ingest: row %d: %w: result and its probe must be set", i, ErrInvalid)
		}
		dst, err := netip.ParseAddr(r.Dst)
		if err != nil {
			return nil, fmt.Errorf("ingest: row %d: %w: dst: %w", i, ErrInvalid, err)
		}
		payload, raw, err := EncodeResult(r)
		if err != nil {
			return nil, fmt.Errorf("ingest: row %d: %w: %w", i, ErrInvalid, err)
		}
		staged[i] = stagedRow{dst: dst.WithZone(""), payload: payload, raw: raw}
		if d := dayOf(r.Time); d != lastDay && !slices.Contains(days, d) {
			days = append(days, d)
			lastDay = d
		}
	}
	if err := db.ensurePartitions(ctx, days); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	inserted, err := db.ingestRetry(ctx, rows, staged)
	if isNoPartition(err) {
		// A partition we had cached was dropped (retention): recreate.
		db.forgetPartitions()
		if err := db.ensurePartitions(ctx, days); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		inserted, err = db.ingestRetry(ctx, rows, staged)
	}
	if err != nil {
		if isDataError(err) {
			// The rows' content, not the database's state, failed the
			// batch: the caller can split it to find the offending rows.
			return nil, fmt.Errorf("ingest: %w: %w", ErrInvalid, err)
		}
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return inserted, nil
}

// isDataError reports whether PostgreSQL refused a batch because of a
// value in it: a data exception (class 22: invalid byte sequence, NUL in
// text, numeric out of range, …), an integrity violation other than the
// unique violation ingest handles itself (class 23), or a program limit
// such as an index row too large (54000). Running the same rows again
// fails the same way; a subset without the offending row commits.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") && pe.Code != "23505" || pe.Code == "54000"
}

// ingestRetry runs the ingest transaction, again when PostgreSQL aborted it
// to break a deadlock: two concurrent batches holding copies of each
// other's results (a probe retrying while its first upload still commits)
// wait on each other's uncommitted keys, and one of them is cancelled.
func (db *DB) ingestRetry(ctx context.Context, rows []ResultRow, staged []stagedRow) ([]bool, error) {
	for attempt := 0; ; attempt++ {
		inserted, err := db.ingestTx(ctx, rows, staged)
		if attempt < 3 && isRetryable(err) && ctx.Err() == nil {
			continue
		}
		return inserted, err
	}
}

// ingestState remembers how recent batches went, to choose how the next
// one is written.
type ingestState struct {
	// stagedLeft is how many more batches take the staged path before the
	// direct path is tried again (see ingestTx).
	stagedLeft atomic.Int32
}

// stagedAfterConflict is how many batches take the staged path after a
// direct COPY ran into an already stored result. Duplicates come in runs
// (a probe re-sending its spool after a lost acknowledgement), so the next
// batches would likely collide too; a failed direct COPY costs about one
// whole batch.
const stagedAfterConflict = 16

// ingestTx writes one batch. Most batches hold no result stored before, so
// the rows are first COPYed straight into results (PostgreSQL's multi-row
// heap insert, no staging table, no per-row speculative insertion): if a
// key is already stored the COPY fails with a unique violation, nothing is
// kept, and the batch is written again the slow way: COPY into a staging
// table, then INSERT … ON CONFLICT DO NOTHING RETURNING, which says which
// rows were new. Copies of a key within rows never reach the database.
func (db *DB) ingestTx(ctx context.Context, rows []ResultRow, staged []stagedRow) ([]bool, error) {
	inserted, firsts := firstCopies(rows)
	st := &db.ingest
	if left := st.stagedLeft.Load(); left > 0 {
		st.stagedLeft.CompareAndSwap(left, left-1)
	} else {
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			src := &copySource{rows: rows, staged: staged, only: firsts, vals: make([]any, len(resultColumns))}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"results"}, resultColumns, src); err != nil {
				return fmt.Errorf("copy to results: %w", err)
			}
			return advanceCatchment(ctx, tx, rows, inserted)
		})
		if !isUniqueViolation(err) {
			if err != nil {
				return nil, err
			}
			return inserted, nil
		}
		st.stagedLeft.Store(stagedAfterConflict)
	}
	return db.ingestStaged(ctx, rows, staged)
}

// firstCopies marks the first copy of every key in rows (inserted, for the
// direct path) and lists their indexes (nil when every row is a first copy).
func firstCopies(rows []ResultRow) (inserted []bool, firsts []int) {
	inserted = make([]bool, len(rows))
	seen := make(map[resultKey]struct{}, len(rows))
	dups := false
	for i := range rows {
		k := keyOf(rows[i].TargetID, rows[i].Result.ID, rows[i].Result.Time)
		if _, ok := seen[k]; ok {
			dups = true
			continue
		}
		seen[k] = struct{}{}
		inserted[i] = true
	}
	if !dups {
		return inserted, nil
	}
	firsts = make([]int, 0, len(rows))
	for i, ok := range inserted {
		if ok {
			firsts = append(firsts, i)
		}
	}
	return inserted, firsts
}

func (db *DB) ingestStaged(ctx context.Context, rows []ResultRow, staged []stagedRow) ([]bool, error) {
	inserted := make([]bool, len(rows))
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		clear(inserted) // a retried transaction starts over
		if _, err := tx.Exec(ctx, stageDDL); err != nil {
			return fmt.Errorf("staging table: %w", err)
		}
		src := &copySource{rows: rows, staged: staged, ord: true, vals: make([]any, len(stageColumns))}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ingest_stage"}, stageColumns, src); err != nil {
			return fmt.Errorf("copy to staging: %w", err)
		}
		res, err := tx.Query(ctx, mergeSQL)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		fresh := map[resultKey]bool{}
		for res.Next() {
			var target int
			var id [16]byte
			var ts time.Time
			if err := res.Scan(&target, &id, &ts); err != nil {
				res.Close()
				return fmt.Errorf("merge: %w", err)
			}
			fresh[keyOf(target, id, ts)] = true
		}
		if err := res.Err(); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		for i := range rows {
			k := keyOf(rows[i].TargetID, rows[i].Result.ID, rows[i].Result.Time)
			if fresh[k] {
				inserted[i] = true
				delete(fresh, k) // a later copy in this batch is a duplicate
			}
		}
		return advanceCatchment(ctx, tx, rows, inserted)
	})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// resultColumns are the results columns ingest writes (stageColumns
// without ord).
var resultColumns = stageColumns[1:]

// copySource feeds rows to COPY, reusing one value slice: pgx encodes each
// row before asking for the next.
type copySource struct {
	rows   []ResultRow
	staged []stagedRow
	only   []int // indexes of the rows to send; nil: all
	ord    bool  // lead with the row's index (the staging table's ord)
	i      int   // rows sent
	vals   []any
	text   [4]pgtype.Text
	num    [2]pgtype.Float4
}

func (s *copySource) Next() bool {
	n := len(s.rows)
	if s.only != nil {
		n = len(s.only)
	}
	if s.i >= n {
		return false
	}
	s.i++
	return true
}

func (s *copySource) Values() ([]any, error) {
	i := s.i - 1
	if s.only != nil {
		i = s.only[i]
	}
	row, st := &s.rows[i], &s.staged[i]
	r := row.Result
	s.text = [4]pgtype.Text{text(row.Identity), text(row.Site), text(r.Error), text(row.Source)}
	s.num = [2]pgtype.Float4{float4(row.RTT), float4(row.Loss)}
	v := s.vals[:0]
	if s.ord {
		v = append(v, int32(i))
	}
	v = append(v, int32(row.TargetID), r.Time, (*[16]byte)(&r.ID), r.Probe, string(r.Kind), r.Measurement,
		int16(r.AF), st.dst, &s.num[0], &s.num[1], &s.text[0], &s.text[1], &s.text[2], st.payload, st.raw, &s.text[3])
	return v, nil
}

func (s *copySource) Err() error { return nil }

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isRetryable reports whether PostgreSQL aborted the transaction for a
// reason that running it again can fix (deadlock_detected,
// serialization_failure).
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

func float4(p *float64) pgtype.Float4 {
	if p == nil {
		return pgtype.Float4{}
	}
	return pgtype.Float4{Float32: float32(*p), Valid: true}
}

// observations returns the catchment observations of the newly inserted
// rows in time order (result id breaking ties).
func observations(rows []ResultRow, inserted []bool) []catchment.Observation {
	var obs []catchment.Observation
	for i := range rows {
		row := &rows[i]
		if !inserted[i] || row.State == "" {
			continue
		}
		r := row.Result
		obs = append(obs, catchment.Observation{
			Key:      catchment.Key{Target: row.TargetID, Probe: r.Probe, AF: r.AF},
			Time:     r.Time.UTC().Truncate(time.Microsecond), // as stored
			State:    row.State,
			Site:     row.Site,
			Identity: row.Identity,
			Source:   row.Source,
			Kind:     r.Kind,
			RTT:      row.RTT,
			ResultID: r.ID,
		})
	}
	slices.SortStableFunc(obs, func(a, b catchment.Observation) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return bytes.Compare(a.ResultID[:], b.ResultID[:])
	})
	return obs
}

func advanceCatchment(ctx context.Context, tx pgx.Tx, rows []ResultRow, inserted []bool) error {
	obs := observations(rows, inserted)
	if len(obs) == 0 {
		return nil
	}
	keySet := map[catchment.Key]bool{}
	var keys []catchment.Key
	for _, o := range obs {
		if !keySet[o.Key] {
			keySet[o.Key] = true
			keys = append(keys, o.Key)
		}
	}
	targets := make([]int32, len(keys))
	probes := make([]string, len(keys))
	afs := make([]int16, len(keys))
	for i, k := range keys {
		targets[i], probes[i], afs[i] = int32(k.Target), k.Probe, int16(k.AF)
	}
	prev, err := lockLatest(ctx, tx, targets, probes, afs)
	if err != nil {
		return err
	}
	latest, changes := catchment.Fold(prev, obs)
	if err := upsertLatest(ctx, tx, latest); err != nil {
		return err
	}
	return insertChanges(ctx, tx, changes)
}

// lockLatest row-locks the catchment_latest rows of the given tracks and
// returns the state of those that have one. Concurrent batches touching
// the same track serialize here, so each folds onto the state the other
// committed.
//
// A track without a row has nothing to lock, so a placeholder row (zero
// result id) is inserted first, in key order: a concurrent inserter of the
// same track waits for our transaction, and the placeholder is replaced in
// this same transaction (every locked track gets a new latest state), so
// no other transaction ever sees one. Row locks live in the tuples, unlike
// advisory locks, so a batch may touch any number of tracks.
func lockLatest(ctx context.Context, tx pgx.Tx, targets []int32, probes []string, afs []int16) (map[catchment.Key]catchment.Latest, error) {
	_, err := tx.Exec(ctx, `
		INSERT INTO catchment_latest (target_id, probe_id, af, state, observed_at, since, result_id)
		SELECT t, p, a, 'unreachable', 'epoch', 'epoch', '00000000-0000-0000-0000-000000000000'
		FROM unnest($1::integer[], $2::text[], $3::smallint[]) AS k(t, p, a)
		ORDER BY t, p, a
		ON CONFLICT DO NOTHING`, targets, probes, afs)
	if err != nil {
		return nil, fmt.Errorf("lock catchment tracks: %w", err)
	}
	// Locks are taken after the sort, in key order, so two batches
	// cannot deadlock on each other's tracks.
	rows, err := tx.Query(ctx, `
		SELECT l.target_id, l.probe_id, l.af, l.state, l.site, l.identity, l.rtt_ms, l.observed_at, l.since, l.result_id,
			l.source, l.source_at
		FROM catchment_latest l
		JOIN unnest($1::integer[], $2::text[], $3::smallint[]) AS k(target_id, probe_id, af)
		  USING (target_id, probe_id, af)
		ORDER BY l.target_id, l.probe_id, l.af
		FOR UPDATE OF l`, targets, probes, afs)
	if err != nil {
		return nil, fmt.Errorf("lock catchment tracks: %w", err)
	}
	defer rows.Close()
	out := map[catchment.Key]catchment.Latest{}
	for rows.Next() {
		l, err := scanLatest(rows)
		if err != nil {
			return nil, fmt.Errorf("load catchment: %w", err)
		}
		if !l.ResultID.IsZero() { // not our placeholder
			out[l.Key] = l
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load catchment: %w", err)
	}
	return out, nil
}

func scanLatest(row pgx.Row) (catchment.Latest, error) {
	var l catchment.Latest
	var state string
	var site, identity pgtype.Text
	var rtt pgtype.Float4
	var id [16]byte
	var source pgtype.Text
	var sourceAt pgtype.Timestamptz
	if err := row.Scan(&l.Target, &l.Probe, &l.AF, &state, &site, &identity, &rtt, &l.ObservedAt, &l.Since, &id, &source, &sourceAt); err != nil {
		return l, err
	}
	l.State, l.Site, l.Identity, l.RTT, l.ResultID = catchment.State(state), site.String, identity.String, ptr64(rtt), id
	l.Source, l.SourceAt = source.String, sourceAt.Time.UTC()
	l.ObservedAt, l.Since = l.ObservedAt.UTC(), l.Since.UTC()
	return l, nil
}

func ptr64(f pgtype.Float4) *float64 {
	if !f.Valid || !finite32(f.Float32) {
		return nil
	}
	v := float64(f.Float32)
	return &v
}

func text(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

func upsertLatest(ctx context.Context, tx pgx.Tx, latest map[catchment.Key]catchment.Latest) error {
	n := len(latest)
	var (
		targets    = make([]int32, 0, n)
		probes     = make([]string, 0, n)
		afs        = make([]int16, 0, n)
		states     = make([]string, 0, n)
		sites      = make([]pgtype.Text, 0, n)
		identities = make([]pgtype.Text, 0, n)
		rtts       = make([]pgtype.Float4, 0, n)
		observed   = make([]time.Time, 0, n)
		since      = make([]time.Time, 0, n)
		ids        = make([]pgtype.UUID, 0, n)
		sources    = make([]pgtype.Text, 0, n)
		sourceAts  = make([]pgtype.Timestamptz, 0, n)
	)
	for _, l := range latest {
		sources = append(sources, text(l.Source))
		sourceAts = append(sourceAts, pgtype.Timestamptz{Time: l.SourceAt, Valid: !l.SourceAt.IsZero()})
		targets = append(targets, int32(l.Target))
		probes = append(probes, l.Probe)
		afs = append(afs, int16(l.AF))
		states = append(states, string(l.State))
		sites = append(sites, text(l.Site))
		identities = append(identities, text(l.Identity))
		rtts = append(rtts, float4(l.RTT))
		observed = append(observed, l.ObservedAt)
		since = append(since, l.Since)
		ids = append(ids, pgtype.UUID{Bytes: l.ResultID, Valid: true})
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO catchment_latest (target_id, probe_id, af, state, site, identity, rtt_ms, observed_at, since, result_id,
			source, source_at)
		SELECT * FROM unnest($1::integer[], $2::text[], $3::smallint[], $4::text[], $5::text[], $6::text[],
			$7::real[], $8::timestamptz[], $9::timestamptz[], $10::uuid[], $11::text[], $12::timestamptz[])
		ON CONFLICT (target_id, probe_id, af) DO UPDATE SET
			state = EXCLUDED.state, site = EXCLUDED.site, identity = EXCLUDED.identity, rtt_ms = EXCLUDED.rtt_ms,
			observed_at = EXCLUDED.observed_at, since = EXCLUDED.since, result_id = EXCLUDED.result_id,
			source = EXCLUDED.source, source_at = EXCLUDED.source_at`,
		targets, probes, afs, states, sites, identities, rtts, observed, since, ids, sources, sourceAts)
	if err != nil {
		return fmt.Errorf("update catchment: %w", err)
	}
	return nil
}

func insertChanges(ctx context.Context, tx pgx.Tx, changes []catchment.Change) error {
	if len(changes) == 0 {
		return nil
	}
	n := len(changes)
	var (
		targets   = make([]int32, n)
		ts        = make([]time.Time, n)
		probes    = make([]string, n)
		afs       = make([]int16, n)
		fromState = make([]pgtype.Text, n)
		fromSite  = make([]pgtype.Text, n)
		fromIdent = make([]pgtype.Text, n)
		fromRTT   = make([]pgtype.Float4, n)
		fromTS    = make([]pgtype.Timestamptz, n)
		toState   = make([]string, n)
		toSite    = make([]pgtype.Text, n)
		toIdent   = make([]pgtype.Text, n)
		toRTT     = make([]pgtype.Float4, n)
		ids       = make([]pgtype.UUID, n)
	)
	for i, c := range changes {
		targets[i], ts[i], probes[i], afs[i] = int32(c.Target), c.Time, c.Probe, int16(c.AF)
		if f := c.From; f != nil {
			fromState[i], fromSite[i], fromIdent[i] = text(string(f.State)), text(f.Site), text(f.Identity)
			fromRTT[i] = float4(f.RTT)
			fromTS[i] = pgtype.Timestamptz{Time: f.ObservedAt, Valid: true}
		}
		toState[i], toSite[i], toIdent[i], toRTT[i] = string(c.To.State), text(c.To.Site), text(c.To.Identity), float4(c.To.RTT)
		ids[i] = pgtype.UUID{Bytes: c.ResultID, Valid: true}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO catchment_changes (target_id, ts, probe_id, af, from_state, from_site, from_identity, from_rtt_ms, from_ts,
			to_state, to_site, to_identity, to_rtt_ms, result_id)
		SELECT * FROM unnest($1::integer[], $2::timestamptz[], $3::text[], $4::smallint[], $5::text[], $6::text[], $7::text[],
			$8::real[], $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::real[], $14::uuid[])
		ON CONFLICT DO NOTHING`,
		targets, ts, probes, afs, fromState, fromSite, fromIdent, fromRTT, fromTS, toState, toSite, toIdent, toRTT, ids)
	if err != nil {
		return fmt.Errorf("record catchment changes: %w", err)
	}
	return nil
}
