package store

import (
	"context"
	"fmt"
	"time"
)

// SiteRTTs is every RTT of one track's identified results towards one site
// in a range, ascending.
type SiteRTTs struct {
	Probe string
	AF    int
	Site  string
	RTTs  []float64
}

// MaxSiteRTTs bounds how many RTTs SiteRTTs returns per (probe, af, site):
// the smallest ones, which are all a speed-of-light check needs.
const MaxSiteRTTs = 10000

// SiteRTTs returns, per (probe, af, site), the RTTs of a target's results
// with a site in [from, to) (af 0: both), smallest first: the input of the
// speed-of-light check (catchment.Impossible).
func (db *DB) SiteRTTs(ctx context.Context, targetID int, from, to time.Time, af int) ([]SiteRTTs, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT probe_id, af, site, (array_agg(rtt_ms::float8 ORDER BY rtt_ms))[1:$5]
		FROM results
		WHERE target_id = $1 AND ts >= $2 AND ts < $3 AND ($4 = 0 OR af = $4)
		  AND site IS NOT NULL AND rtt_ms IS NOT NULL
		GROUP BY probe_id, af, site
		ORDER BY probe_id, af, site`, targetID, from, to, af, MaxSiteRTTs)
	if err != nil {
		return nil, fmt.Errorf("site rtts: %w", err)
	}
	defer rows.Close()
	var out []SiteRTTs
	for rows.Next() {
		var s SiteRTTs
		var af int16
		if err := rows.Scan(&s.Probe, &af, &s.Site, &s.RTTs); err != nil {
			return nil, fmt.Errorf("site rtts: %w", err)
		}
		s.AF = int(af)
		out = append(out, s)
	}
	return out, rows.Err()
}
