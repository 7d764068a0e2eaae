package store

import (
	"context"
	"fmt"
	"time"
)

// SeedOptions sizes a synthetic data set for load tests and benchmarks
// (anycatch-server seed). Zero fields mean the defaults in brackets.
type SeedOptions struct {
	Probes   int           // [10000]
	Targets  int           // [20]
	Days     int           // days of history ending now [30]
	Interval time.Duration // one identity result per probe and target per interval [6h]
	RawDays  int           // days (ending now) that also get raw results rows [1]
	// Progress is called after each step; nil ignores.
	Progress func(step string, rows int64, took time.Duration)
}

// seedSites are the site codes and positions seeded targets get.
var seedSites = []struct {
	code     string
	lat, lon float64
}{{"ams", 52.37, 4.9}, {"fra", 50.11, 8.68}, {"lhr", 51.47, -0.45}, {"iad", 38.95, -77.45},
	{"sjc", 37.36, -121.93}, {"nrt", 35.77, 140.39}, {"sin", 1.36, 103.99}, {"gru", -23.43, -46.47}}

// Seed fills an empty database with synthetic probes, targets, sites,
// rules, catchment state and changes, result rollups, and raw results for
// the last RawDays, all generated inside PostgreSQL (generate_series) so
// tens of millions of rows take minutes, not hours. Probe "seed-pNNNNN" is
// served by a home site derived from its number; every 50th probe flaps
// to the next site from 00:00 to 06:00 UTC each day, every 97th answers
// with an unmapped identity, and one result in 200 is unreachable.
func (db *DB) Seed(ctx context.Context, o SeedOptions) error {
	if o.Probes <= 0 {
		o.Probes = 10000
	}
	if o.Targets <= 0 {
		o.Targets = 20
	}
	if o.Days <= 0 {
		o.Days = 30
	}
	if o.Interval <= 0 {
		o.Interval = 6 * time.Hour
	}
	if o.RawDays <= 0 {
		o.RawDays = 1
	}
	if o.Interval < time.Minute || (24*time.Hour)%o.Interval != 0 {
		return fmt.Errorf("seed: interval %s must divide a day and be at least 1m", o.Interval)
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, int64, time.Duration) {}
	}
	end := time.Now().UTC().Truncate(o.Interval)
	start := end.Add(-time.Duration(o.Days) * 24 * time.Hour)
	nsites := len(seedSites)
	step := func(name, sql string, args ...any) error {
		t0 := time.Now()
		tag, err := db.pool.Exec(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("seed: %s: %w", name, err)
		}
		progress(name, tag.RowsAffected(), time.Since(t0))
		return nil
	}
	// Shared SQL fragments: p is the probe number, ts the slot time, tid
	// the target id. site_ix is the probe's site at ts.
	const probeID = `'seed-p' || lpad(p::text, 5, '0')`
	const flapping = `(p % 50 = 0 AND extract(hour FROM ts) < 6)`
	siteIx := fmt.Sprintf(`((p * 7 + tid) %% %d + CASE WHEN %s THEN 1 ELSE 0 END) %% %d`, nsites, flapping, nsites)
	const unmapped = `(p % 97 = 0)`
	const unreachable = `(abs(hashtext(p::text || ts::text || tid::text)) % 200 = 0)`
	const rtt = `(5 + (p * 37 + tid * 11) % 150 + abs(hashtext(ts::text || p::text)) % 10)::real`
	codes := "ARRAY["
	for i, s := range seedSites {
		if i > 0 {
			codes += ","
		}
		codes += "'" + s.code + "'"
	}
	codes += "]"
	siteExpr := fmt.Sprintf(`CASE WHEN %s OR %s THEN NULL ELSE (%s)[%s + 1] END`, unmapped, unreachable, codes, siteIx)

	if err := step("probes", `INSERT INTO probes (id, asn, as_name, country, continent, declared_lat, declared_lon, version, capabilities, first_seen, last_seen)
		SELECT `+probeID+`, 64500 + p % 800, 'Seed AS ' || (64500 + p % 800),
			(ARRAY['DE','NL','FR','GB','US','CA','BR','JP','SG','AU','IN','ZA','SE','PL','ES','IT'])[p % 16 + 1],
			(ARRAY['EU','EU','EU','EU','NA','NA','SA','AS','AS','OC','AS','AF','EU','EU','EU','EU'])[p % 16 + 1],
			(p % 160) - 80 + (p % 7) * 0.1, (p * 13 % 360) - 180 + (p % 3) * 0.1, 'seed',
			'{"ipv4":true,"ipv6":false,"ping_mode":"dgram","trace_mode":"recverr"}', $1,
			CASE WHEN p % 100 = 0 THEN NULL WHEN p % 10 = 0 THEN $2::timestamptz - interval '2 days' ELSE $2::timestamptz END
		FROM generate_series(0, $3 - 1) p ON CONFLICT DO NOTHING`, start, end, o.Probes); err != nil {
		return err
	}
	if err := step("targets", `INSERT INTO targets (name, description, addr4, interval_sec, specs)
		SELECT 'seed-t' || lpad(t::text, 2, '0'), 'seeded', ('198.18.' || t || '.53')::inet, $1, '[{"kind":"identity"}]'
		FROM generate_series(0, $2 - 1) t ON CONFLICT DO NOTHING`, int(o.Interval/time.Second), o.Targets); err != nil {
		return err
	}
	for i, s := range seedSites {
		if err := step("sites "+s.code, `INSERT INTO sites (target_id, code, name, lat, lon)
			SELECT id, $1, upper($1), $2, $3 FROM targets WHERE name LIKE 'seed-t%' ON CONFLICT DO NOTHING`, s.code, s.lat, s.lon); err != nil {
			return err
		}
		if err := step("rules "+s.code, `INSERT INTO site_rules (target_id, position, source, match, pattern, site)
			SELECT id, $1, 'any', 'exact', $2 || '1.seed', $2 FROM targets WHERE name LIKE 'seed-t%' ON CONFLICT DO NOTHING`, i, s.code); err != nil {
			return err
		}
	}
	targets, err := db.seedTargets(ctx)
	if err != nil {
		return err
	}
	slots := fmt.Sprintf(`generate_series($2::timestamptz, $3::timestamptz - interval '%d seconds', interval '%d seconds') ts`,
		int(o.Interval/time.Second), int(o.Interval/time.Second))
	for _, tid := range targets {
		if err := step(fmt.Sprintf("results_hourly target %d", tid), `INSERT INTO results_hourly
				(target_id, hour, probe_id, af, kind, site, results, answered, rtt_sum, rtt_min, first_ts, last_ts)
			SELECT tid, date_trunc('hour', ts), `+probeID+`, 4, 'identity', coalesce(`+siteExpr+`, ''), 1,
				CASE WHEN `+unreachable+` THEN 0 ELSE 1 END,
				CASE WHEN `+unreachable+` THEN 0 ELSE `+rtt+` END,
				CASE WHEN `+unreachable+` THEN NULL ELSE `+rtt+` END, ts, ts
			FROM (SELECT $1::int AS tid) t, `+slots+`, generate_series(0, $4 - 1) p
			ORDER BY ts, p
			ON CONFLICT DO NOTHING`, tid, start, end, o.Probes); err != nil {
			return err
		}
		if err := db.seedBlocks(ctx, tid, start, end, progress); err != nil {
			return err
		}
		if err := step(fmt.Sprintf("catchment_changes target %d", tid), `INSERT INTO catchment_changes
				(target_id, ts, probe_id, af, from_state, from_site, from_identity, from_ts, to_state, to_site, to_identity, to_rtt_ms, result_id)
			SELECT tid, ts, `+probeID+`, 4,
				CASE WHEN ts = $2 THEN NULL ELSE 'site' END,
				CASE WHEN ts = $2 THEN NULL ELSE (`+codes+`)[(((p * 7 + tid) % `+seedItoa(nsites)+` + CASE WHEN extract(hour FROM ts) < 6 THEN 0 ELSE 1 END) % `+seedItoa(nsites)+`) + 1] END,
				NULL, NULL,
				CASE WHEN `+unmapped+` THEN 'unidentified' ELSE 'site' END,
				CASE WHEN `+unmapped+` THEN NULL ELSE (`+codes+`)[`+siteIx+` + 1] END,
				CASE WHEN `+unmapped+` THEN 'seed-unknown-' || (p % 5) ELSE (`+codes+`)[`+siteIx+` + 1] || '1.seed' END,
				`+rtt+`, gen_random_uuid()
			FROM (SELECT $1::int AS tid) t, generate_series(0, $4 - 1) p, `+slots+`
			WHERE ts = $2 OR (p % 50 = 0 AND NOT `+unmapped+` AND extract(hour FROM ts) IN (0, 6) AND extract(minute FROM ts) = 0)
			ON CONFLICT DO NOTHING`, tid, start, end, o.Probes); err != nil {
			return err
		}
		if err := step(fmt.Sprintf("catchment_latest target %d", tid), `INSERT INTO catchment_latest
				(target_id, probe_id, af, state, site, identity, rtt_ms, observed_at, since, result_id)
			SELECT tid, `+probeID+`, 4,
				CASE WHEN `+unreachable+` THEN 'unreachable' WHEN `+unmapped+` THEN 'unidentified' ELSE 'site' END,
				CASE WHEN `+unmapped+` THEN NULL ELSE (`+codes+`)[`+siteIx+` + 1] END,
				CASE WHEN `+unmapped+` THEN 'seed-unknown-' || (p % 5) ELSE (`+codes+`)[`+siteIx+` + 1] || '1.seed' END,
				CASE WHEN `+unreachable+` THEN NULL ELSE `+rtt+` END, ts,
				CASE WHEN p % 50 = 0 AND NOT `+unmapped+` THEN date_trunc('day', ts) + CASE WHEN extract(hour FROM ts) < 6 THEN interval '0' ELSE interval '6 hours' END ELSE $2 END,
				gen_random_uuid()
			FROM (SELECT $1::int AS tid) t, generate_series(0, $4 - 1) p, (SELECT $3::timestamptz - interval '1 second' * $5 AS ts) s
			ON CONFLICT DO NOTHING`, tid, start, end, o.Probes, int(o.Interval/time.Second)); err != nil {
			return err
		}
	}
	rawFrom := end.Add(-time.Duration(o.RawDays) * 24 * time.Hour)
	var days []time.Time
	for d := rawFrom.Truncate(24 * time.Hour); d.Before(end); d = d.Add(24 * time.Hour) {
		days = append(days, d)
	}
	if err := db.ensurePartitions(ctx, days); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	for _, tid := range targets {
		// UUIDv7: 48-bit unix ms, version 7, then deterministic bits.
		if err := step(fmt.Sprintf("results target %d", tid), `INSERT INTO results
				(target_id, ts, id, probe_id, kind, msm, af, dst, rtt_ms, identity, site, error, payload)
			SELECT tid, ts, id, pid, 'identity', 'seed/identity', 4, '198.18.0.53', r, ident, site,
				CASE WHEN r IS NULL THEN 'timeout' END,
				jsonb_build_object('v', 1, 'id', id, 'probe', pid, 'msm', 'seed/identity', 'kind', 'identity', 'ts', ts,
					'dst', '198.18.0.53', 'af', 4, 'dns', jsonb_build_object('server', '198.18.0.53:53',
					'exchanges', jsonb_build_array(CASE WHEN r IS NULL
						THEN jsonb_build_object('qname', 'hostname.bind.', 'qclass', 'CH', 'qtype', 'TXT', 'proto', 'udp', 'error', 'timeout')
						ELSE jsonb_build_object('qname', 'hostname.bind.', 'qclass', 'CH', 'qtype', 'TXT', 'proto', 'udp', 'rtt', r, 'rcode', 'NOERROR') END),
					'identity', CASE WHEN r IS NULL THEN NULL ELSE jsonb_build_object('hostname_bind', ident) END))
			FROM (
				SELECT tid, ts, `+probeID+` AS pid,
					CASE WHEN `+unreachable+` THEN NULL ELSE `+rtt+` END AS r,
					CASE WHEN `+unreachable+` THEN NULL WHEN `+unmapped+` THEN 'seed-unknown-' || (p % 5) ELSE (`+codes+`)[`+siteIx+` + 1] || '1.seed' END AS ident,
					`+siteExpr+` AS site,
					(lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid AS id
				FROM (SELECT $1::int AS tid) t, `+slots+`, generate_series(0, $4 - 1) p,
					LATERAL (SELECT md5(p::text || ts::text || tid::text) AS h) hh
				ORDER BY ts, p
			) x ON CONFLICT DO NOTHING`, tid, rawFrom, end, o.Probes); err != nil {
			return err
		}
	}
	// Vacuum the change log so the historical catchment's per-probe
	// lookups are index-only (visibility map set), as autovacuum would
	// have it on a live database; the rest only needs statistics.
	if err := step("vacuum catchment_changes", `VACUUM (ANALYZE) catchment_changes`); err != nil {
		return err
	}
	return step("analyze", `ANALYZE`)
}

func (db *DB) seedTargets(ctx context.Context) ([]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT id FROM targets WHERE name LIKE 'seed-t%' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int32
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		ids = append(ids, int(id))
	}
	return ids, rows.Err()
}

func seedItoa(n int) string { return fmt.Sprint(n) }

// seedBlocks builds a seeded target's rollup blocks, as the periodic rollup
// would have.
func (db *DB) seedBlocks(ctx context.Context, tid int, start, end time.Time, progress func(string, int64, time.Duration)) error {
	t0 := time.Now()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("seed: rollup blocks: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	n, err := buildBlocks(ctx, tx, start, end, end, []int32{int32(tid)})
	if err != nil {
		return fmt.Errorf("seed: rollup blocks: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("seed: rollup blocks: %w", err)
	}
	progress(fmt.Sprintf("rollup blocks target %d", tid), int64(n), time.Since(t0))
	return nil
}
