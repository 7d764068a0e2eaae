package store

import (
	"context"
	"testing"
	"time"
)

// TestAdhocResultsOutsideTargets: ad-hoc on-demand results are stored
// under target_id 0, which no target owns (collector.AdhocTargetID). The
// rollup must leave them out: before it did, its rebuild inserted their
// hourly rows but never deleted them (it deletes per existing target), so
// the second rebuild of the same hours failed on the primary key.
func TestAdhocResultsOutsideTargets(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	ts := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Millisecond)
	r := pingResult("p-adhoc", ts)
	r.Measurement, r.Target = "adhoc/od-0123456789abcdef/ping/6", ""
	ins, err := db.IngestBatch(ctx, []ResultRow{{TargetID: 0, Result: r, RTT: fp(11)}})
	if err != nil || len(ins) != 1 || !ins[0] {
		t.Fatalf("ingest ad-hoc result: %v %v", ins, err)
	}
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM results WHERE target_id = 0 AND msm = $1`, r.Measurement).Scan(&n); err != nil || n != 1 {
		t.Fatalf("stored ad-hoc rows: %d, %v; want 1", n, err)
	}
	for run := 1; run <= 2; run++ {
		if err := db.RollupResults(ctx, ts.Add(-time.Hour), ts.Add(time.Hour)); err != nil {
			t.Fatalf("rollup run %d: %v", run, err)
		}
	}
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM results_hourly WHERE target_id = 0`).Scan(&n); err != nil || n != 0 {
		t.Errorf("ad-hoc rows in results_hourly: %d, %v; want 0", n, err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM catchment_latest WHERE target_id = 0`).Scan(&n); err != nil || n != 0 {
		t.Errorf("ad-hoc rows in catchment_latest: %d, %v; want 0", n, err)
	}
}
