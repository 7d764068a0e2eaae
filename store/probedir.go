package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// probeDir is an in-memory copy of what reports show of every probe (id,
// country, continent, ASN, location), so a 10,000-probe report does not
// join or look up 10,000 probes rows each time. It is checked against
// probe_meta_version, which a trigger bumps in the same transaction as any
// change to those columns (migration 003), and reloaded when it differs:
// a report reads the version and, if needed, the probes in its own
// read-only transaction, so what it shows is consistent with its snapshot.
type probeDir struct {
	version int64
	byNum   map[uint32]*probeInfo
	byID    map[string]*probeInfo
}

// probeInfo is what reports show of a probe.
type probeInfo struct {
	num                    uint32
	id, country, continent string
	lat, lon               *float64
	asn                    *int64
}

type probeDirCache struct {
	mu  sync.Mutex // held while loading, so concurrent misses load once
	dir *probeDir
}

// probeDirectory returns the probe directory as of tx's snapshot.
func (db *DB) probeDirectory(ctx context.Context, tx pgx.Tx) (*probeDir, error) {
	var v int64
	if err := tx.QueryRow(ctx, `SELECT version FROM probe_meta_version`).Scan(&v); err != nil {
		return nil, fmt.Errorf("probe directory: %w", err)
	}
	c := &db.probes
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir != nil && c.dir.version == v {
		return c.dir, nil
	}
	d, err := loadProbeDir(ctx, tx, v)
	if err != nil {
		return nil, err
	}
	// A transaction with an older snapshot may load an older version:
	// keep the newest.
	if c.dir == nil || d.version >= c.dir.version {
		c.dir = d
	}
	return d, nil
}

func loadProbeDir(ctx context.Context, tx pgx.Tx, version int64) (*probeDir, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM probes`).Scan(&n); err != nil {
		return nil, fmt.Errorf("probe directory: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT num, id, coalesce(country, ''), coalesce(continent, ''), asn,
			coalesce(declared_lat, geo_lat), coalesce(declared_lon, geo_lon)
		FROM probes`)
	if err != nil {
		return nil, fmt.Errorf("probe directory: %w", err)
	}
	d := &probeDir{version: version, byNum: make(map[uint32]*probeInfo, n), byID: make(map[string]*probeInfo, n)}
	infos := make([]probeInfo, 0, n)
	err = eachRaw(rows, func(dec *rawDecoder, v [][]byte) error {
		if len(v) != 7 || v[0] == nil || v[1] == nil {
			return errRawValue
		}
		num, err := dec.int(dec.oids[0], v[0])
		if err != nil {
			return err
		}
		if len(infos) == cap(infos) { // probes added since the count
			infos = make([]probeInfo, 0, 1024)
		}
		infos = append(infos, probeInfo{num: uint32(num), id: dec.str(v[1], false), country: dec.str(v[2], true), continent: dec.str(v[3], true)})
		p := &infos[len(infos)-1]
		if p.asn, err = dec.intPtr(dec.oids[4], v[4]); err != nil {
			return err
		}
		if p.lat, err = dec.float(dec.oids[5], v[5]); err != nil {
			return err
		}
		if p.lon, err = dec.float(dec.oids[6], v[6]); err != nil {
			return err
		}
		d.byNum[uint32(num)] = p
		d.byID[p.id] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("probe directory: %w", err)
	}
	return d, nil
}
