package store

import (
	"context"
	"fmt"
	"time"
)

// LatestDataAt returns the time of a target's newest result (zero when it
// has none): after an import of history only, "now" shows nothing, and
// readers need to know where the data is. The primary key (target_id, ts,
// id) of each day partition answers it with one backward index probe per
// partition, newest partition first.
func (db *DB) LatestDataAt(ctx context.Context, targetID int) (time.Time, error) {
	var ts *time.Time
	err := db.pool.QueryRow(ctx, `SELECT max(ts) FROM results WHERE target_id = $1`, targetID).Scan(&ts)
	if err != nil {
		return time.Time{}, fmt.Errorf("latest data: %w", classify(err))
	}
	if ts == nil {
		return time.Time{}, nil
	}
	return ts.UTC(), nil
}
