package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anycatch/anycatch/measure"
)

// rttInRange keeps RTTs outside 0..measure.MaxRTTMS (Infinity, NaN and
// negatives stored before results were range-checked) out of the
// rollups: such a result counts as a result without an RTT, instead of
// an RTT sum of Infinity or a minimum the block builder would turn into 0.
var rttInRange = fmt.Sprintf("rtt_ms >= 0 AND rtt_ms <= %g", measure.MaxRTTMS)

// RollupResults rebuilds results_hourly for the hours overlapping [from,
// to) from raw results, and the rollup blocks of those hours (see
// rollupblock.go).
// It is idempotent; run it periodically over the last few hours (late
// uploads) and once over any range backfilled.
func (db *DB) RollupResults(ctx context.Context, from, to time.Time) error {
	// Never before the oldest raw results: the hours of days retention
	// has dropped keep their rollups.
	oldest, err := db.oldestPartitionDay(ctx)
	if err != nil {
		return fmt.Errorf("rollup results: %w", err)
	}
	if from.Before(oldest) {
		from = oldest
	}
	from = from.UTC().Truncate(time.Hour)
	to = to.UTC().Truncate(time.Hour).Add(time.Hour)
	if !from.Before(to) {
		return nil
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rollup results: %w", err)
	}
	defer tx.Rollback(ctx)
	// Target by target: results_hourly's key starts with the target, so
	// the rebuild touches only the hours it replaces instead of scanning
	// the whole rollup.
	targets, err := targetIDs(ctx, tx)
	if err != nil {
		return fmt.Errorf("rollup results: %w", err)
	}
	steps := []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM results_hourly WHERE target_id = ANY($3) AND hour >= $1 AND hour < $2`, []any{from, to, targets}},
		{`INSERT INTO results_hourly (target_id, hour, probe_id, af, kind, site, results, answered, rtt_sum, rtt_min,
				loss_sum, loss_n, first_ts, last_ts)
			SELECT target_id, date_trunc('hour', ts), probe_id, af, kind, coalesce(site, ''), count(*),
				count(rtt_ms) FILTER (WHERE ` + rttInRange + `),
				coalesce(sum(rtt_ms) FILTER (WHERE ` + rttInRange + `), 0), min(rtt_ms) FILTER (WHERE ` + rttInRange + `),
				coalesce(sum(loss), 0), count(loss), min(ts), max(ts)
			FROM results WHERE ts >= $1 AND ts < $2 AND target_id = ANY($3)
			GROUP BY 1, 2, 3, 4, 5, 6`, []any{from, to, targets}},
	}
	for _, s := range steps {
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("rollup results: %w", err)
		}
	}
	// Blocks spanning the current hour wait for a later run.
	if _, err := buildBlocks(ctx, tx, from, to, time.Now(), targets); err != nil {
		return fmt.Errorf("rollup results: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rollup results: %w", err)
	}
	return nil
}

// targetIDs lists every target's id.
func targetIDs(ctx context.Context, tx pgx.Tx) ([]int32, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM targets ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int32])
}

// RebuildBlocks rebuilds the rollup blocks of the hours overlapping [from,
// to) from results_hourly as it stands (RollupResults does this too; this
// is for ranges whose raw results retention has already dropped). It
// returns the number of blocks written.
func (db *DB) RebuildBlocks(ctx context.Context, from, to time.Time) (int, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("rebuild rollup blocks: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	targets, err := targetIDs(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("rebuild rollup blocks: %w", err)
	}
	n, err := buildBlocks(ctx, tx, from, to, time.Now(), targets)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("rebuild rollup blocks: %w", err)
	}
	return n, nil
}

// oldestPartitionDay is the day of the oldest results partition; with
// none, the far future (there are no raw results).
func (db *DB) oldestPartitionDay(ctx context.Context) (time.Time, error) {
	names, err := db.Partitions(ctx)
	if err != nil {
		return time.Time{}, err
	}
	for _, n := range names {
		if d, err := time.Parse(partitionLayout, strings.TrimPrefix(n, partitionPrefix)); err == nil && strings.HasPrefix(n, partitionPrefix) {
			return d.UTC(), nil
		}
	}
	return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), nil
}
