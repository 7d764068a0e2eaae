package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const probeColumns = `id, origin, status = 'active', asn, coalesce(as_name, ''), coalesce(country, ''),
	coalesce(continent, ''), coalesce(city, ''), coalesce(declared_lat, geo_lat), coalesce(declared_lon, geo_lon),
	version, capabilities, first_seen, last_seen`

func scanProbe(row pgx.Row) (ProbeRow, error) {
	var p ProbeRow
	var caps []byte
	err := row.Scan(&p.ID, &p.Origin, &p.Enabled, &p.ASN, &p.ASName, &p.Country, &p.Continent, &p.City,
		&p.Lat, &p.Lon, &p.Version, &caps, &p.FirstSeen, &p.LastSeen)
	p.Capabilities = caps
	return p, err
}

// ListProbes returns probes matching f in id order, at most f.Limit.
func (db *DB) ListProbes(ctx context.Context, f ProbeFilter) ([]ProbeRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+probeColumns+` FROM probes
		WHERE ($1 = '' OR country = upper($1))
		  AND ($2::bigint IS NULL OR asn = $2)
		  AND ($3 = '' OR ($3 = 'connected' AND last_seen >= $4)
		       OR ($3 = 'disconnected' AND last_seen < $4 AND last_seen >= $5)
		       OR ($3 = 'abandoned' AND (last_seen IS NULL OR last_seen < $5)))
		  AND id > $6
		  AND origin <> 'site' -- census site agents (docs/census.md) are not volunteer probes
		ORDER BY id LIMIT $7`,
		f.Country, f.ASN, f.Status, f.ConnectedSince, f.AbandonedBefore, f.After, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list probes: %w", err)
	}
	defer rows.Close()
	var out []ProbeRow
	for rows.Next() {
		p, err := scanProbe(rows)
		if err != nil {
			return nil, fmt.Errorf("list probes: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list probes: %w", err)
	}
	return out, nil
}

// GetProbe returns one probe or ErrNotFound.
func (db *DB) GetProbe(ctx context.Context, id string) (ProbeRow, error) {
	p, err := scanProbe(db.pool.QueryRow(ctx, `SELECT `+probeColumns+` FROM probes WHERE id = $1`, id))
	if err != nil {
		return ProbeRow{}, fmt.Errorf("get probe: %w", classify(err))
	}
	return p, nil
}
