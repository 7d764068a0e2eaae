package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// fillHourly writes random results_hourly rows for target 1: probes of
// several kinds, families and sites over hours [fromH, toH), some hours
// empty. It returns the target's id.
func fillHourly(t *testing.T, db *DB, rng *rand.Rand, fromH, toH int64, probes int) int {
	t.Helper()
	ctx := context.Background()
	var tid int
	if err := db.pool.QueryRow(ctx, `INSERT INTO targets (name, addr4) VALUES ('t1', '198.51.100.53') RETURNING id`).Scan(&tid); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for p := range probes {
		id := fmt.Sprintf("p-%04d", p)
		ids = append(ids, id)
		if _, err := db.pool.Exec(ctx, `INSERT INTO probes (id, country, continent, asn) VALUES ($1, $2, 'EU', $3)
			ON CONFLICT (id) DO NOTHING`, id, []string{"DE", "NL", "FR"}[p%3], 64500+p%7); err != nil {
			t.Fatal(err)
		}
	}
	sites := []string{"", "ams", "fra", "iad"}
	var rowsSQL []string
	for h := fromH; h < toH; h++ {
		if rng.IntN(5) == 0 {
			continue // an hour without results
		}
		for _, id := range ids {
			if rng.IntN(4) == 0 {
				continue
			}
			for _, kind := range []string{"identity", "ping", "dns"} {
				if kind == "dns" && rng.IntN(3) != 0 {
					continue
				}
				for _, af := range []int{4, 6} {
					if af == 6 && rng.IntN(2) == 0 {
						continue
					}
					site := ""
					if kind != "ping" {
						site = sites[rng.IntN(len(sites))]
					}
					results := 1 + rng.IntN(6)
					answered := rng.IntN(results + 1)
					rttSum, rttMin := "0", "NULL"
					if answered > 0 {
						m := 1 + rng.Float64()*100
						rttMin = fmt.Sprintf("%g", m)
						rttSum = fmt.Sprintf("%g", float64(answered)*(m+rng.Float64()*50))
					}
					lossN, lossSum := 0, 0.0
					if kind == "ping" {
						lossN = results
						lossSum = rng.Float64() * float64(results)
					}
					first := h*3600 + int64(rng.IntN(1800))
					last := first + int64(rng.IntN(1800))
					rowsSQL = append(rowsSQL, fmt.Sprintf("(%d, to_timestamp(%d), '%s', %d, '%s', '%s', %d, %d, %s, %s, %g, %d, to_timestamp(%d), to_timestamp(%d))",
						tid, h*3600, id, af, kind, site, results, answered, rttSum, rttMin, lossSum, lossN, first, last))
				}
			}
		}
	}
	for len(rowsSQL) > 0 {
		n := min(len(rowsSQL), 2000)
		if _, err := db.pool.Exec(ctx, `INSERT INTO results_hourly (target_id, hour, probe_id, af, kind, site, results, answered,
			rtt_sum, rtt_min, loss_sum, loss_n, first_ts, last_ts) VALUES `+strings.Join(rowsSQL[:n], ",")+`
			ON CONFLICT (target_id, hour, probe_id, af, kind, site) DO UPDATE SET results = excluded.results, answered = excluded.answered,
			rtt_sum = excluded.rtt_sum, rtt_min = excluded.rtt_min, loss_sum = excluded.loss_sum, loss_n = excluded.loss_n,
			first_ts = excluded.first_ts, last_ts = excluded.last_ts`); err != nil {
			t.Fatal(err)
		}
		rowsSQL = rowsSQL[n:]
	}
	return tid
}

// oracleLatency is the latency report computed straight from
// results_hourly in SQL.
func oracleLatency(t *testing.T, db *DB, q LatencyQuery) []LatencyRow {
	t.Helper()
	fromH, toH := hoursOf(q.From, q.To)
	kind := string(q.Kind)
	where := `target_id = $1 AND hour >= $2 AND hour < $3 AND ($4 = 0 OR af = $4)`
	var sql string
	if kind == "identity" || kind == "dns" {
		sql = `SELECT probe_id, site, sum(answered), sum(rtt_sum) / nullif(sum(answered), 0), min(rtt_min),
				CASE WHEN sum(loss_n) > 0 THEN sum(loss_sum) / sum(loss_n) ELSE 1 - sum(answered)::float8 / nullif(sum(results), 0) END
			FROM results_hourly WHERE ` + where + ` AND kind = $5 GROUP BY probe_id, site ORDER BY probe_id, site`
	} else {
		sql = `WITH s AS (
				SELECT DISTINCT ON (probe_id) probe_id, site FROM (
					SELECT probe_id, site, sum(answered) AS n FROM results_hourly
					WHERE ` + where + ` AND kind IN ('identity', 'dns') AND site <> '' GROUP BY probe_id, site) z
				ORDER BY probe_id, n DESC, site)
			SELECT r.probe_id, coalesce(s.site, ''), sum(answered), sum(rtt_sum) / nullif(sum(answered), 0), min(rtt_min),
				CASE WHEN sum(loss_n) > 0 THEN sum(loss_sum) / sum(loss_n) ELSE 1 - sum(answered)::float8 / nullif(sum(results), 0) END
			FROM results_hourly r LEFT JOIN s ON s.probe_id = r.probe_id
			WHERE r.target_id = $1 AND hour >= $2 AND hour < $3 AND ($4 = 0 OR af = $4) AND kind = $5
			GROUP BY r.probe_id, s.site ORDER BY r.probe_id`
	}
	rows, err := db.pool.Query(context.Background(), sql, q.TargetID, hourTime(fromH), hourTime(toH), q.AF, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []LatencyRow
	for rows.Next() {
		var l LatencyRow
		var n int64
		var minRTT *float32
		if err := rows.Scan(&l.Probe, &l.Site, &n, &l.RTT, &minRTT, &l.Loss); err != nil {
			t.Fatal(err)
		}
		l.Samples = int(n)
		if minRTT != nil {
			v := float64(*minRTT)
			l.MinRTT = &v
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func near(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) <= 1e-4*math.Max(1, math.Abs(*b))
}

func fmtF(f *float64) string {
	if f == nil {
		return "nil"
	}
	return fmt.Sprintf("%.6g", *f)
}

// checkLatency compares Latency with the oracle for q.
func checkLatency(t *testing.T, db *DB, q LatencyQuery) {
	t.Helper()
	got, err := db.Latency(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(x, y LatencyRow) int {
		if c := strings.Compare(x.Probe, y.Probe); c != 0 {
			return c
		}
		return strings.Compare(x.Site, y.Site)
	})
	want := oracleLatency(t, db, q)
	name := fmt.Sprintf("%s af=%d %s..%s", q.Kind, q.AF, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", name, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Probe != w.Probe || g.Site != w.Site || g.Samples != w.Samples || !near(g.RTT, w.RTT) || !near(g.MinRTT, w.MinRTT) || !near(g.Loss, w.Loss) {
			t.Fatalf("%s: row %d = %s %q n=%d rtt=%s min=%s loss=%s, want %s %q n=%d rtt=%s min=%s loss=%s", name, i,
				g.Probe, g.Site, g.Samples, fmtF(g.RTT), fmtF(g.MinRTT), fmtF(g.Loss), w.Probe, w.Site, w.Samples, fmtF(w.RTT), fmtF(w.MinRTT), fmtF(w.Loss))
		}
		if g.Country == "" || g.ASN == nil {
			t.Fatalf("%s: row %d has no probe metadata", name, i)
		}
	}
}

// TestLatencyFromBlocksMatchesRollups checks the block-based latency
// report against the same sums computed in SQL from results_hourly, for
// random ranges, kinds and families, after a full build, after rebuilding
// an hour inside finished higher blocks, and after a higher block went
// missing.
func TestLatencyFromBlocksMatchesRollups(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(21, 22))
	// 300 hours ending two hours ago, aligned oddly.
	endH := hourOf(time.Now()) - 2
	fromH := endH - 300
	tid := fillHourly(t, db, rng, fromH, endH, 12)
	n, err := db.RebuildBlocks(ctx, hourTime(fromH), hourTime(endH))
	if err != nil {
		t.Fatal(err)
	}
	var levels int
	if err := db.pool.QueryRow(ctx, `SELECT count(DISTINCT level) FROM rollup_blocks`).Scan(&levels); err != nil {
		t.Fatal(err)
	}
	if n == 0 || levels < 8 {
		t.Fatalf("built %d blocks on %d levels", n, levels)
	}
	ranges := func() []LatencyQuery {
		var qs []LatencyQuery
		for i := 0; i < 12; i++ {
			a := fromH - 5 + int64(rng.IntN(310))
			b := a + 1 + int64(rng.IntN(int(endH+5-a)))
			from := hourTime(a).Add(time.Duration(rng.IntN(3600)) * time.Second)
			to := hourTime(b).Add(-time.Duration(rng.IntN(3600)) * time.Second)
			if !from.Before(to) {
				to = from.Add(time.Minute)
			}
			qs = append(qs, LatencyQuery{TargetID: tid, From: from, To: to, Kind: measure.Kind([]string{"identity", "ping", "dns"}[i%3]), AF: []int{0, 4, 6}[i/3%3]})
		}
		qs = append(qs, LatencyQuery{TargetID: tid, From: hourTime(fromH - 100), To: hourTime(endH + 10), Kind: "ping"},
			LatencyQuery{TargetID: tid, From: hourTime(fromH - 100), To: hourTime(endH + 10), Kind: "identity"})
		return qs
	}
	for _, q := range ranges() {
		checkLatency(t, db, q)
	}

	// Late results change an hour inside finished blocks of every level:
	// rebuilding that hour must rebuild them.
	late := fromH + 150
	if _, err := db.pool.Exec(ctx, `UPDATE results_hourly SET answered = results, rtt_sum = results * 999, rtt_min = 999
		WHERE hour = $1 AND probe_id IN ('p-0001', 'p-0002')`, hourTime(late)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM results_hourly WHERE hour = $1 AND probe_id = 'p-0003'`, hourTime(late)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RebuildBlocks(ctx, hourTime(late), hourTime(late+1)); err != nil {
		t.Fatal(err)
	}
	checkLatency(t, db, LatencyQuery{TargetID: tid, From: hourTime(fromH), To: hourTime(endH), Kind: "identity"})
	checkLatency(t, db, LatencyQuery{TargetID: tid, From: hourTime(late - 40), To: hourTime(late + 3), Kind: "ping", AF: 4})

	// A higher block that was never built (say the rollup was not running
	// when its span ended) is rebuilt from its halves when a parent needs
	// it, and reports stay right meanwhile.
	if _, err := db.pool.Exec(ctx, `DELETE FROM rollup_blocks WHERE level IN (3, 5) AND start < $1`, hourTime(late)); err != nil {
		t.Fatal(err)
	}
	for _, q := range ranges()[:4] {
		checkLatency(t, db, q)
	}
	if _, err := db.RebuildBlocks(ctx, hourTime(late-1), hourTime(late)); err != nil {
		t.Fatal(err)
	}
	checkLatency(t, db, LatencyQuery{TargetID: tid, From: hourTime(fromH), To: hourTime(endH), Kind: "identity", AF: 6})
}

// TestRollupResultsBuildsBlocks checks that the periodic rollup builds the
// blocks of the raw results it rolls up.
func TestRollupResultsBuildsBlocks(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	if err := db.Seed(ctx, SeedOptions{Probes: 50, Targets: 1, Days: 2, Interval: time.Hour, RawDays: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM rollup_blocks`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := db.RollupResults(ctx, now.Add(-20*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	var n0, nHigh int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE level = 0), count(*) FILTER (WHERE level > 0) FROM rollup_blocks`).Scan(&n0, &nHigh); err != nil {
		t.Fatal(err)
	}
	if n0 < 19 || nHigh == 0 {
		t.Fatalf("%d hour blocks and %d higher blocks after a 20-hour rollup", n0, nHigh)
	}
	var tid int
	if err := db.pool.QueryRow(ctx, `SELECT id FROM targets WHERE name LIKE 'seed-t%' LIMIT 1`).Scan(&tid); err != nil {
		t.Fatal(err)
	}
	checkLatency(t, db, LatencyQuery{TargetID: tid, From: now.Add(-19 * time.Hour), To: now, Kind: "identity"})
}
