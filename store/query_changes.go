package store

import (
	"context"
	"fmt"
	"time"
)

// Changes returns catchment changes of a target in [q.From, q.To) in (ts,
// probe, af) order (reversed when q.Desc), strictly after (before, when
// q.Desc) the keyset position (q.AfterTS, q.AfterProbe, q.AfterAF) unless
// AfterTS is zero, at most q.Limit. q.MovesOnly leaves out first
// observations.
func (db *DB) Changes(ctx context.Context, q ChangeQuery) ([]ChangeRow, error) {
	sql := `SELECT probe_id, af, ts, coalesce(from_state, ''), coalesce(from_site, ''),
			coalesce(from_identity, ''), to_state, coalesce(to_site, ''), coalesce(to_identity, ''), to_rtt_ms
		FROM catchment_changes
		WHERE target_id = $1 AND ts >= $2 AND ts < $3 AND ($4 = 0 OR af = $4) AND ($5 = '' OR probe_id = $5)`
	args := []any{q.TargetID, q.From, q.To, q.AF, q.Probe, q.Limit}
	if q.MovesOnly {
		sql += ` AND from_state IS NOT NULL`
	}
	order := ` ORDER BY ts, probe_id, af LIMIT $6`
	if q.Desc {
		order = ` ORDER BY ts DESC, probe_id DESC, af DESC LIMIT $6`
	}
	if !q.AfterTS.IsZero() {
		op := ">"
		if q.Desc {
			op = "<"
		}
		sql += ` AND (ts, probe_id, af) ` + op + ` ($7, $8, $9)`
		args = append(args, q.AfterTS, q.AfterProbe, q.AfterAF)
	}
	rows, err := db.pool.Query(ctx, sql+order, args...)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	defer rows.Close()
	var out []ChangeRow
	for rows.Next() {
		var c ChangeRow
		var af int16
		var rtt *float32
		if err := rows.Scan(&c.Probe, &af, &c.TS, &c.FromState, &c.FromSite, &c.FromIdentity,
			&c.ToState, &c.ToSite, &c.ToIdentity, &rtt); err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
		c.AF = int(af)
		c.RTT = f64(rtt)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	return out, nil
}

// ChangeCounts summarises the changes of q's range (keyset and limit
// ignored; first observations excluded): tracks with at least q.FlapMin
// changes, most first, and per site the probes gained and lost.
func (db *DB) ChangeCounts(ctx context.Context, q ChangeQuery) ([]ProbeChangeCount, []SiteChangeCount, error) {
	const where = `target_id = $1 AND ts >= $2 AND ts < $3 AND ($4 = 0 OR af = $4) AND ($5 = '' OR probe_id = $5)
		AND from_state IS NOT NULL`
	rows, err := db.pool.Query(ctx, `SELECT probe_id, af, count(*) FROM catchment_changes WHERE `+where+`
		GROUP BY probe_id, af HAVING count(*) >= $6 ORDER BY count(*) DESC, probe_id, af LIMIT 1000`,
		q.TargetID, q.From, q.To, q.AF, q.Probe, max(q.FlapMin, 1))
	if err != nil {
		return nil, nil, fmt.Errorf("change counts: %w", err)
	}
	var probes []ProbeChangeCount
	for rows.Next() {
		var p ProbeChangeCount
		var af int16
		var n int64
		if err := rows.Scan(&p.Probe, &af, &n); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("change counts: %w", err)
		}
		p.AF, p.Changes = int(af), int(n)
		probes = append(probes, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("change counts: %w", err)
	}
	rows, err = db.pool.Query(ctx, `SELECT site, sum(g), sum(l) FROM (
			SELECT to_site AS site, 1 AS g, 0 AS l FROM catchment_changes WHERE `+where+` AND to_site IS NOT NULL
			UNION ALL
			SELECT from_site, 0, 1 FROM catchment_changes WHERE `+where+` AND from_site IS NOT NULL
		) x GROUP BY site ORDER BY site`,
		q.TargetID, q.From, q.To, q.AF, q.Probe)
	if err != nil {
		return nil, nil, fmt.Errorf("change counts: %w", err)
	}
	defer rows.Close()
	var sites []SiteChangeCount
	for rows.Next() {
		var s SiteChangeCount
		var g, l int64
		if err := rows.Scan(&s.Site, &g, &l); err != nil {
			return nil, nil, fmt.Errorf("change counts: %w", err)
		}
		s.Gained, s.Lost = int(g), int(l)
		sites = append(sites, s)
	}
	return probes, sites, rows.Err()
}

// ChangeTimes counts a target's changes in [q.From, q.To) per q.Bucket
// (aligned to the Unix epoch), earliest bucket first, at most q.Limit
// buckets; buckets without changes are left out. It reads the primary key
// (target_id, ts, …) range of catchment_changes.
func (db *DB) ChangeTimes(ctx context.Context, q ChangeTimesQuery) ([]ChangeTime, error) {
	bucket := max(q.Bucket, time.Minute)
	rows, err := db.pool.Query(ctx, `SELECT date_bin($4::interval, ts, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b,
			count(*), count(from_state)
		FROM catchment_changes
		WHERE target_id = $1 AND ts >= $2 AND ts < $3 AND ($5 = 0 OR af = $5) AND (NOT $6 OR from_state IS NOT NULL)
		GROUP BY b ORDER BY b LIMIT $7`,
		q.TargetID, q.From, q.To, bucket, q.AF, q.MovesOnly, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("change times: %w", err)
	}
	defer rows.Close()
	var out []ChangeTime
	for rows.Next() {
		var c ChangeTime
		var n, m int64
		if err := rows.Scan(&c.TS, &n, &m); err != nil {
			return nil, fmt.Errorf("change times: %w", err)
		}
		c.Changes, c.Moves = int(n), int(m)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("change times: %w", err)
	}
	return out, nil
}
