package store

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkReadQueries times the API's report queries against a database
// seeded by "anycatch-server seed" (ANYCATCH_BENCH_DB=postgres://…; skipped
// without it), on its first seeded target.
func BenchmarkReadQueries(b *testing.B) {
	url := os.Getenv("ANYCATCH_BENCH_DB")
	if url == "" {
		b.Skip("ANYCATCH_BENCH_DB not set")
	}
	ctx := context.Background()
	db, err := Open(ctx, url, Options{MaxConns: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ids, err := db.seedTargets(ctx)
	if err != nil || len(ids) == 0 {
		b.Fatalf("no seeded targets: %v", err)
	}
	id := ids[0]
	now := time.Now().UTC()
	day := 24 * time.Hour
	cases := []struct {
		name string
		run  func() (int, error)
	}{
		{"ping", func() (int, error) { return 1, db.Ping(ctx) }},
		{"catchment_now", func() (int, error) {
			r, err := db.Catchment(ctx, CatchmentQuery{TargetID: id, At: now, Window: 18 * time.Hour})
			return len(r), err
		}},
		{"catchment_7d_ago", func() (int, error) {
			r, err := db.Catchment(ctx, CatchmentQuery{TargetID: id, At: now.Add(-7 * day), Window: 18 * time.Hour, Historical: true})
			return len(r), err
		}},
		{"latency_24h", func() (int, error) {
			r, err := db.Latency(ctx, LatencyQuery{TargetID: id, From: now.Add(-day), To: now, Kind: "identity"})
			return len(r), err
		}},
		{"latency_7d_aligned", func() (int, error) {
			r, err := db.Latency(ctx, LatencyQuery{TargetID: id, From: now.Truncate(day).Add(-7 * day), To: now.Truncate(day), Kind: "identity"})
			return len(r), err
		}},
		{"latency_30d", func() (int, error) {
			r, err := db.Latency(ctx, LatencyQuery{TargetID: id, From: now.Add(-30 * day), To: now, Kind: "identity"})
			return len(r), err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if n, err := c.run(); err != nil || n == 0 {
					b.Fatalf("%d rows, %v", n, err)
				}
			}
		})
	}
}
