package store

import (
	"context"
	"testing"
	"time"
)

// TestSeedIsConsistent seeds a small data set and checks that the
// generated rollups agree with what RollupResults computes from the
// generated raw results, that catchment_latest and catchment_changes tell
// the same story, and that the read queries answer over it.
func TestSeedIsConsistent(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	if err := db.Seed(ctx, SeedOptions{Probes: 300, Targets: 2, Days: 3, Interval: time.Hour, RawDays: 2}); err != nil {
		t.Fatal(err)
	}
	count := func(sql string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := db.pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	tests := []struct {
		name string
		sql  string
		want int64
	}{
		{"probes", `SELECT count(*) FROM probes`, 300},
		{"sites", `SELECT count(*) FROM sites`, 16},
		{"latest per track", `SELECT count(*) FROM catchment_latest`, 600},
		{"hourly rows", `SELECT count(*) FROM results_hourly`, 2 * 300 * 3 * 24},
		{"raw rows", `SELECT count(*) FROM results`, 2 * 300 * 2 * 24},
		{"first observations", `SELECT count(*) FROM catchment_changes WHERE from_state IS NULL`, 600},
		// A track's latest site is the to_site of its last change.
		{"latest agrees with changes", `SELECT count(*) FROM catchment_latest l JOIN LATERAL (
			SELECT to_site FROM catchment_changes c WHERE c.target_id = l.target_id AND c.probe_id = l.probe_id
			ORDER BY ts DESC LIMIT 1) c ON true WHERE l.site IS DISTINCT FROM c.to_site`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := count(tc.sql); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}

	// Rebuilding the rollups of the raw days from raw results changes
	// nothing: the generator and RollupResults agree.
	before := count(`SELECT count(*) FROM results_hourly`)
	var snapshot int64 = count(`SELECT sum(answered * 1000 + results)::bigint FROM results_hourly WHERE hour >= now() - interval '40 hours'`)
	now := time.Now().UTC()
	if err := db.RollupResults(ctx, now.Add(-40*time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if after := count(`SELECT count(*) FROM results_hourly`); after != before {
		t.Errorf("rollup rebuild changed the hourly row count: %d -> %d", before, after)
	}
	if got := count(`SELECT sum(answered * 1000 + results)::bigint FROM results_hourly WHERE hour >= now() - interval '40 hours'`); got != snapshot {
		t.Errorf("rollup rebuild changed answered/results: %d -> %d", snapshot, got)
	}

	ids, err := db.seedTargets(ctx)
	if err != nil || len(ids) != 2 {
		t.Fatalf("targets %v %v", ids, err)
	}
	rows, err := db.Catchment(ctx, CatchmentQuery{TargetID: ids[0], At: now, Window: 3 * time.Hour})
	if err != nil || len(rows) != 300 {
		t.Errorf("current catchment: %d rows, %v", len(rows), err)
	}
	rows, err = db.Catchment(ctx, CatchmentQuery{TargetID: ids[0], At: now.Add(-30 * time.Hour), Window: 3 * time.Hour, Historical: true})
	if err != nil || len(rows) != 300 {
		t.Errorf("historical catchment: %d rows, %v", len(rows), err)
	}
	lat, err := db.Latency(ctx, LatencyQuery{TargetID: ids[0], From: now.Add(-50 * time.Hour), To: now, Kind: "identity"})
	if err != nil || len(lat) < 300 {
		t.Errorf("latency: %d rows, %v", len(lat), err)
	}
	// The seeded blocks (the first two days were never rolled up from raw
	// results) sum to what results_hourly holds.
	if n := count(`SELECT count(*) FROM rollup_blocks WHERE start < $1 AND level > 3`, now.Add(-40*time.Hour)); n == 0 {
		t.Error("seed built no higher rollup blocks")
	}
	checkLatency(t, db, LatencyQuery{TargetID: ids[1], From: now.Add(-71 * time.Hour), To: now, Kind: "identity"})
}
