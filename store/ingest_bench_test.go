package store

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// benchBatch is a realistic collector batch: half identity results (three
// DNS exchanges with raw replies, classified to one of 12 sites) and half
// ping results (3 replies), from 100 probes.
func benchBatch(target, n int, start time.Time) []ResultRow {
	rows := make([]ResultRow, 0, n)
	for i := range n {
		ts := start.Add(time.Duration(i) * time.Millisecond)
		probe := fmt.Sprintf("p-%03d", i%100)
		if i%2 == 0 {
			site := fmt.Sprintf("s%02d", (i/200)%12)
			rows = append(rows, identityRow(target, probe, ts, "k1."+site+".example", site))
		} else {
			rows = append(rows, ResultRow{TargetID: target, Result: pingResult(probe, ts), RTT: fp(11), Loss: fp(0)})
		}
	}
	return rows
}

func BenchmarkIngestBatch1000(b *testing.B) {
	db := openDB(b)
	ctx := context.Background()
	tg := &Target{Name: "bench", Addr4: "198.18.53.53", Enabled: true}
	if err := db.CreateTarget(ctx, tg); err != nil {
		b.Fatal(err)
	}
	start := time.Now().UTC().Truncate(time.Hour)
	const n = 1000
	b.ResetTimer()
	i := 0
	for b.Loop() {
		b.StopTimer()
		rows := benchBatch(tg.ID, n, start.Add(time.Duration(i)*time.Second))
		i++
		b.StartTimer()
		inserted, err := db.IngestBatch(ctx, rows)
		if err != nil {
			b.Fatal(err)
		}
		if !inserted[n-1] {
			b.Fatal("last row not inserted")
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "results/s")
}

// BenchmarkCopyOnly1000 is the floor IngestBatch1000 is measured against:
// the same rows, encoded the same way (payload JSON included), COPYed
// straight into results in one transaction per batch: no duplicate check,
// no catchment state. Compare the two on the same machine at the same
// time; absolute numbers vary with load.
func BenchmarkCopyOnly1000(b *testing.B) {
	db := openDB(b)
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Hour)
	const n = 1000
	if err := db.ensurePartitions(ctx, []time.Time{dayOf(start)}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		rows := benchBatch(1, n, start.Add(time.Duration(i)*time.Second))
		i++
		b.StartTimer()
		staged := make([]stagedRow, n)
		for j := range rows {
			r := rows[j].Result
			payload, raw, err := EncodeResult(r)
			if err != nil {
				b.Fatal(err)
			}
			staged[j] = stagedRow{dst: netip.MustParseAddr(r.Dst), payload: payload, raw: raw}
		}
		err := pgx.BeginFunc(ctx, db.Pool(), func(tx pgx.Tx) error {
			src := &copySource{rows: rows, staged: staged, vals: make([]any, len(resultColumns))}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"results"}, resultColumns, src)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "results/s")
}
