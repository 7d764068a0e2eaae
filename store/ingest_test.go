package store

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

// TestIngestPaths checks that the direct COPY path and the staged
// fallback give the same verdicts, and that a conflict switches ingest to
// the staged path for stagedAfterConflict batches only.
func TestIngestPaths(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "k-root")
	ping := func(min int) ResultRow {
		return ResultRow{TargetID: tg.ID, Result: pingResult("p-1", base.Add(time.Duration(min)*time.Minute))}
	}
	a, b, c, d := ping(0), ping(1), ping(2), ping(3)

	for _, tc := range []struct {
		name     string
		rows     []ResultRow
		want     []bool
		leftWant int32 // stagedLeft after the batch
	}{
		{"direct: new rows", []ResultRow{a, b}, []bool{true, true}, 0},
		{"direct: a new row twice in the batch", []ResultRow{c, c}, []bool{true, false}, 0},
		{"direct fails on a stored row, staged answers", []ResultRow{d, a, d}, []bool{true, false, false}, stagedAfterConflict},
		{"staged: new rows", []ResultRow{ping(4), ping(5)}, []bool{true, true}, stagedAfterConflict - 1},
	} {
		got, err := db.IngestBatch(ctx, tc.rows)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: inserted = %v, want %v", tc.name, got, tc.want)
		}
		if left := db.ingest.stagedLeft.Load(); left != tc.leftWant {
			t.Errorf("%s: staged batches left = %d, want %d", tc.name, left, tc.leftWant)
		}
	}
	for i := range stagedAfterConflict - 1 {
		if _, err := db.IngestBatch(ctx, []ResultRow{ping(10 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if left := db.ingest.stagedLeft.Load(); left != 0 {
		t.Errorf("after %d staged batches: %d left, want 0 (direct again)", stagedAfterConflict, left)
	}
	var n int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM results`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := 6 + stagedAfterConflict - 1; n != want {
		t.Errorf("stored %d results, want %d", n, want)
	}
}

// TestConcurrentIngestSharedTracks runs batches that share catchment
// tracks and results (retried uploads) concurrently, as the collector's
// committers do: every result is stored once, and each track ends in the
// state of its newest observation with one change per site move.
func TestConcurrentIngestSharedTracks(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "k-root")
	const probes, steps = 5, 40
	// Step s of every probe is seen at site s/10: four runs, three moves.
	var all []ResultRow
	for s := range steps {
		for p := range probes {
			site := fmt.Sprintf("s%d", s/10)
			all = append(all, identityRow(tg.ID, fmt.Sprintf("p-%d", p), base.Add(time.Duration(s)*time.Second), "k1."+site+".example", site))
		}
	}
	// Four workers each ingest overlapping windows of 40 rows: every row is
	// sent by two workers.
	var wg sync.WaitGroup
	verdicts := make([][]bool, 4)
	errs := make([]error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := (w % 2) * 20; lo < len(all); lo += 40 {
				got, err := db.IngestBatch(ctx, all[lo:min(lo+40, len(all))])
				if err != nil {
					errs[w] = err
					return
				}
				verdicts[w] = append(verdicts[w], got...)
			}
		}()
	}
	wg.Wait()
	inserted := 0
	for w := range 4 {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		for _, ok := range verdicts[w] {
			if ok {
				inserted++
			}
		}
	}
	if inserted != len(all) {
		t.Errorf("rows reported inserted = %d, want %d (each exactly once)", inserted, len(all))
	}
	var n int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM results`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(all) {
		t.Errorf("stored %d results, want %d", n, len(all))
	}
	latest, err := db.LatestCatchment(ctx, tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != probes {
		t.Fatalf("tracks = %d, want %d", len(latest), probes)
	}
	last := base.Add((steps - 1) * time.Second).Truncate(time.Microsecond)
	for _, l := range latest {
		if l.Site != "s3" || !l.ObservedAt.Equal(last) {
			t.Errorf("track %s: site %q observed %v, want s3 at %v", l.Probe, l.Site, l.ObservedAt, last)
		}
		changes, err := db.TrackChanges(ctx, catchment.Key{Target: tg.ID, Probe: l.Probe, AF: 4})
		if err != nil {
			t.Fatal(err)
		}
		// Batches may commit out of time order; an observation older than
		// the stored state is not folded in (catchment.Advance), so at most
		// the first observation and the three moves are recorded.
		if len(changes) < 1 || len(changes) > 4 {
			t.Errorf("track %s: %d changes, want 1..4", l.Probe, len(changes))
		}
	}
}
