package store

import (
	"context"
	"fmt"
	"time"
)

// Latency returns per-(probe, site) RTT and loss aggregates of one kind over
// [q.From, q.To), rounded out to whole hours, read from the rollups: whole
// UTC days from results_daily, the partial days at either end from
// results_hourly. For kinds that do not identify a site (ping, trace) each
// probe's site is the one its identity/dns results reached most often in
// the range.
func (db *DB) Latency(ctx context.Context, q LatencyQuery) ([]LatencyRow, error) {
	from := q.From.UTC().Truncate(time.Hour)
	to := q.To.UTC().Truncate(time.Hour)
	if to.Before(q.To) {
		to = to.Add(time.Hour)
	}
	dayFrom := from.Truncate(24 * time.Hour)
	if dayFrom.Before(from) {
		dayFrom = dayFrom.Add(24 * time.Hour)
	}
	dayTo := to.Truncate(24 * time.Hour)
	if !dayFrom.Before(dayTo) {
		// No whole day inside: hours only.
		dayFrom, dayTo = to, to
	}
	kind := string(q.Kind)
	identified := kind == "identity" || kind == "dns"
	rollup := func(kinds string) string {
		return `SELECT probe_id, site, results, answered, rtt_sum, rtt_min, loss_sum, loss_n FROM results_daily
				WHERE target_id = $1 AND day >= $4 AND day < $5 AND ` + kinds + ` AND ($6 = 0 OR af = $6)
			UNION ALL
			SELECT probe_id, site, results, answered, rtt_sum, rtt_min, loss_sum, loss_n FROM results_hourly
				WHERE target_id = $1 AND hour >= $2 AND hour < $4 AND ` + kinds + ` AND ($6 = 0 OR af = $6)
			UNION ALL
			SELECT probe_id, site, results, answered, rtt_sum, rtt_min, loss_sum, loss_n FROM results_hourly
				WHERE target_id = $1 AND hour >= $5 AND hour < $3 AND ` + kinds + ` AND ($6 = 0 OR af = $6)`
	}
	var sql string
	if identified {
		sql = `WITH r AS (
				SELECT probe_id, site, sum(results) AS results, sum(answered) AS answered, sum(rtt_sum) AS rtt_sum,
					min(rtt_min) AS rtt_min, sum(loss_sum) AS loss_sum, sum(loss_n) AS loss_n
				FROM (` + rollup(`kind = $7`) + `) x GROUP BY probe_id, site)
			SELECT r.probe_id, r.site, coalesce(p.country, ''), coalesce(p.continent, ''), p.asn,
				r.answered, r.rtt_sum / nullif(r.answered, 0), r.rtt_min,
				CASE WHEN r.loss_n > 0 THEN r.loss_sum / r.loss_n ELSE 1 - r.answered::float8 / nullif(r.results, 0) END
			FROM r LEFT JOIN probes p ON p.id = r.probe_id
			ORDER BY r.probe_id, r.site`
	} else {
		sql = `WITH r AS (
				SELECT probe_id, sum(results) AS results, sum(answered) AS answered, sum(rtt_sum) AS rtt_sum,
					min(rtt_min) AS rtt_min, sum(loss_sum) AS loss_sum, sum(loss_n) AS loss_n
				FROM (` + rollup(`kind = $7`) + `) x GROUP BY probe_id
			), s AS (
				SELECT DISTINCT ON (probe_id) probe_id, site FROM (
					SELECT probe_id, site, sum(answered) AS n FROM (` + rollup(`kind IN ('identity', 'dns')`) + `) y
					WHERE site <> '' GROUP BY probe_id, site) z
				ORDER BY probe_id, n DESC, site
			)
			SELECT r.probe_id, coalesce(s.site, ''), coalesce(p.country, ''), coalesce(p.continent, ''), p.asn,
				r.answered, r.rtt_sum / nullif(r.answered, 0), r.rtt_min,
				CASE WHEN r.loss_n > 0 THEN r.loss_sum / r.loss_n ELSE 1 - r.answered::float8 / nullif(r.results, 0) END
			FROM r LEFT JOIN s ON s.probe_id = r.probe_id LEFT JOIN probes p ON p.id = r.probe_id
			ORDER BY r.probe_id`
	}
	rows, err := db.pool.Query(ctx, sql, q.TargetID, from, to, dayFrom, dayTo, q.AF, kind)
	if err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	defer rows.Close()
	var out []LatencyRow
	for rows.Next() {
		var l LatencyRow
		var minRTT *float32
		var samples int64
		if err := rows.Scan(&l.Probe, &l.Site, &l.Country, &l.Continent, &l.ASN, &samples, &l.RTT, &minRTT, &l.Loss); err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
		l.Samples = int(samples)
		if minRTT != nil {
			v := float64(*minRTT)
			l.MinRTT = &v
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	return out, nil
}
