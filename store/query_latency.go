package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
	var out []LatencyRow
	var dec *rawDecoder
	decOK := true
	err := db.readQuery(ctx, "latency", sql, []any{q.TargetID, from, to, dayFrom, dayTo, q.AF, kind}, func(rows pgx.Rows) error {
		if dec == nil && decOK {
			dec, decOK = newRawDecoder(rows.FieldDescriptions())
		}
		var l LatencyRow
		if decOK {
			if err := dec.latencyRow(rows.RawValues(), &l); err != nil {
				return err
			}
			out = append(out, l)
			return nil
		}
		var minRTT *float32
		var samples int64
		if err := rows.Scan(&l.Probe, &l.Site, &l.Country, &l.Continent, &l.ASN, &samples, &l.RTT, &minRTT, &l.Loss); err != nil {
			return err
		}
		l.Samples = int(samples)
		if minRTT != nil {
			v := float64(*minRTT)
			l.MinRTT = &v
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// latencyRow decodes one row of the Latency queries (column order of
// their SELECT lists).
func (d *rawDecoder) latencyRow(v [][]byte, l *LatencyRow) error {
	if len(v) != 9 || v[0] == nil || v[5] == nil {
		return fmt.Errorf("latency row: %w", errRawValue)
	}
	var err error
	var samples int64
	l.Probe = d.str(v[0], false)
	l.Site, l.Country, l.Continent = d.str(v[1], true), d.str(v[2], true), d.str(v[3], true)
	if l.ASN, err = d.intPtr(d.oids[4], v[4]); err != nil {
		return err
	}
	if samples, err = d.int(d.oids[5], v[5]); err != nil {
		return err
	}
	l.Samples = int(samples)
	if l.RTT, err = d.float(d.oids[6], v[6]); err != nil {
		return err
	}
	if l.MinRTT, err = d.float(d.oids[7], v[7]); err != nil {
		return err
	}
	l.Loss, err = d.float(d.oids[8], v[8])
	return err
}
