package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// ExternalProbePrefix starts the id of every probe anycatch did not enroll
// (RIPE Atlas probes: "atlas:<prb_id>"). Enrolled probes have ids starting
// "p-", so the two sets can never collide.
const ExternalProbePrefix = "atlas:"

// ExternalProbe is a probe of another platform seen in imported results.
type ExternalProbe struct {
	ID  string     // "atlas:<prb_id>"
	Src netip.Addr // public address the platform saw (Atlas "from"); zero when unknown
	Geo ProbeGeo   // where GeoIP puts Src; zero fields unknown
	// FirstSeen and LastSeen are the earliest and latest result times in
	// this batch; the stored values only ever widen.
	FirstSeen, LastSeen time.Time
}

// UpsertExternalProbes creates or refreshes imported probes (origin
// 'atlas') in one statement. A probe's address and GeoIP fields follow its
// latest result: they are replaced only when LastSeen is not older than
// the stored last_seen, so importing an old file after a new one does not
// move probes back in time; GeoIP fields are kept when the lookup knew
// nothing. Rows of enrolled probes are never touched: ids must start with
// ExternalProbePrefix (ErrInvalid otherwise), and the update is guarded by
// origin. It returns how many probes did not exist before.
func (db *DB) UpsertExternalProbes(ctx context.Context, ps []ExternalProbe) (created int, err error) {
	if len(ps) == 0 {
		return 0, nil
	}
	n := len(ps)
	var (
		ids        = make([]string, n)
		srcs       = make([]*netip.Addr, n)
		prefixes   = make([]*netip.Prefix, n)
		asns       = make([]*int64, n)
		asNames    = make([]*string, n)
		countries  = make([]*string, n)
		continents = make([]*string, n)
		cities     = make([]*string, n)
		lats       = make([]*float64, n)
		lons       = make([]*float64, n)
		first      = make([]time.Time, n)
		last       = make([]time.Time, n)
	)
	seen := make(map[string]bool, n)
	for i, p := range ps {
		if !strings.HasPrefix(p.ID, ExternalProbePrefix) || len(p.ID) == len(ExternalProbePrefix) {
			return 0, fmt.Errorf("upsert external probes: %w: id %q does not start with %q", ErrInvalid, p.ID, ExternalProbePrefix)
		}
		if seen[p.ID] {
			// ON CONFLICT cannot update one row twice in a statement.
			return 0, fmt.Errorf("upsert external probes: %w: probe %q listed twice", ErrInvalid, p.ID)
		}
		seen[p.ID] = true
		if p.FirstSeen.IsZero() || p.LastSeen.IsZero() {
			return 0, fmt.Errorf("upsert external probes: %w: probe %q has no first/last seen time", ErrInvalid, p.ID)
		}
		g := geoArgs(p.Geo)
		ids[i], srcs[i] = p.ID, addrArg(p.Src.Unmap().WithZone(""))
		prefixes[i], asns[i], asNames[i], countries[i], continents[i], cities[i] = g.prefix, g.asn, g.asName, g.country, g.continent, g.city
		lats[i], lons[i] = p.Geo.Lat, p.Geo.Lon
		first[i], last[i] = p.FirstSeen, p.LastSeen
	}
	// xmax = 0 identifies freshly inserted rows in RETURNING.
	rows, err := db.pool.Query(ctx, `
		INSERT INTO probes AS p (id, origin, src_addr, prefix, asn, as_name, country, continent, city,
			geo_lat, geo_lon, first_seen, last_seen)
		SELECT id, 'atlas', src, pfx, asn, as_name, country, continent, city, lat, lon, first_seen, last_seen
		FROM unnest($1::text[], $2::inet[], $3::cidr[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::float8[], $10::float8[], $11::timestamptz[], $12::timestamptz[])
			AS u(id, src, pfx, asn, as_name, country, continent, city, lat, lon, first_seen, last_seen)
		ON CONFLICT (id) DO UPDATE SET
			first_seen = LEAST(p.first_seen, EXCLUDED.first_seen),
			last_seen = GREATEST(p.last_seen, EXCLUDED.last_seen),
			src_addr = CASE WHEN p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen
				THEN COALESCE(EXCLUDED.src_addr, p.src_addr) ELSE p.src_addr END,
			prefix = CASE WHEN (p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen)
				AND (EXCLUDED.asn IS NOT NULL OR EXCLUDED.country IS NOT NULL OR EXCLUDED.geo_lat IS NOT NULL)
				THEN EXCLUDED.prefix ELSE p.prefix END,
			asn = CASE WHEN (p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen)
				AND (EXCLUDED.asn IS NOT NULL OR EXCLUDED.country IS NOT NULL OR EXCLUDED.geo_lat IS NOT NULL)
				THEN EXCLUDED.asn ELSE p.asn END,
			as_name = CASE WHEN (p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen)
				AND (EXCLUDED.asn IS NOT NULL OR EXCLUDED.country IS NOT NULL OR EXCLUDED.geo_lat IS NOT NULL)
				THEN EXCLUDED.as_name ELSE p.as_name END,
			country = CASE WHEN (p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen)
				AND (EXCLUDED.asn IS NOT NULL OR EXCLUDED.country IS NOT NULL OR EXCLUDED.geo_lat IS NOT NULL)
				THEN EXCLUDED.country ELSE p.country END,
			continent = CASE WHEN (p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen)
				AND (EXCLUDED.asn IS NOT NULL OR EXCLUDED.country IS NOT NULL OR EXCLUDED.geo_lat IS NOT NULL)
				THEN EXCLUDED.continent ELSE p.continent END,
			city = CASE WHEN (p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen)
				AND (EXCLUDED.asn IS NOT NULL OR EXCLUDED.country IS NOT NULL OR EXCLUDED.geo_lat IS NOT NULL)
				THEN EXCLUDED.city ELSE p.city END,
			geo_lat = CASE WHEN (p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen)
				AND (EXCLUDED.asn IS NOT NULL OR EXCLUDED.country IS NOT NULL OR EXCLUDED.geo_lat IS NOT NULL)
				THEN EXCLUDED.geo_lat ELSE p.geo_lat END,
			geo_lon = CASE WHEN (p.last_seen IS NULL OR EXCLUDED.last_seen >= p.last_seen)
				AND (EXCLUDED.asn IS NOT NULL OR EXCLUDED.country IS NOT NULL OR EXCLUDED.geo_lat IS NOT NULL)
				THEN EXCLUDED.geo_lon ELSE p.geo_lon END
		WHERE p.origin = 'atlas'
		RETURNING p.id, (p.xmax = 0)`,
		ids, srcs, prefixes, asns, asNames, countries, continents, cities, lats, lons, first, last)
	if err != nil {
		return 0, fmt.Errorf("upsert external probes: %w", classify(err))
	}
	defer rows.Close()
	touched := 0
	for rows.Next() {
		var id string
		var fresh pgtype.Bool
		if err := rows.Scan(&id, &fresh); err != nil {
			return 0, fmt.Errorf("upsert external probes: %w", err)
		}
		touched++
		if fresh.Bool {
			created++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("upsert external probes: %w", classify(err))
	}
	if touched != n {
		// The origin guard refused a row: an id in the external namespace
		// held by a probe of another origin. Nothing enrolls such ids, so
		// this is a broken database, not an import problem to skip.
		return created, fmt.Errorf("upsert external probes: %w: %d of %d probe ids belong to probes that are not external",
			ErrConflict, n-touched, n)
	}
	return created, nil
}
