package store

import (
	"context"
	"fmt"
)

// Changes returns catchment changes of a target in [q.From, q.To) in (ts,
// probe, af) order, strictly after the keyset position (q.AfterTS,
// q.AfterProbe, q.AfterAF), at most q.Limit.
func (db *DB) Changes(ctx context.Context, q ChangeQuery) ([]ChangeRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT probe_id, af, ts, coalesce(from_state, ''), coalesce(from_site, ''),
			coalesce(from_identity, ''), to_state, coalesce(to_site, ''), coalesce(to_identity, ''), to_rtt_ms
		FROM catchment_changes
		WHERE target_id = $1 AND ts >= $2 AND ts < $3 AND ($4 = 0 OR af = $4) AND ($5 = '' OR probe_id = $5)
		  AND (ts, probe_id, af) > ($6, $7, $8)
		ORDER BY ts, probe_id, af LIMIT $9`,
		q.TargetID, q.From, q.To, q.AF, q.Probe, q.AfterTS, q.AfterProbe, q.AfterAF, q.Limit)
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
		if rtt != nil {
			v := float64(*rtt)
			c.RTT = &v
		}
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
