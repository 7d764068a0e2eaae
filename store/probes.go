package store

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anycatch/anycatch/measure"
)

// Enrollment errors. EnrollProbe wraps ErrTokenUnusable with the reason
// (unknown, revoked, expired, used up) and ErrProbeLimit with the limit hit.
var (
	ErrTokenUnusable = errors.New("enrollment token not usable")
	ErrProbeLimit    = errors.New("probe limit reached")
)

// ProbeGeo is where GeoIP places a probe's source address; zero fields are
// unknown.
type ProbeGeo struct {
	ASN       uint32
	ASName    string
	Prefix    netip.Prefix
	Country   string
	Continent string
	City      string
	Lat, Lon  *float64
}

// Enrollment is one probe enrollment.
type Enrollment struct {
	TokenHash    [32]byte
	ProbeID      string
	PublicKey    []byte
	Version      string
	Capabilities measure.Capabilities
	Location     *measure.Location // declared
	Src          netip.Addr
	Geo          ProbeGeo
	// Sybil caps on active probes; negative means unlimited.
	MaxPerAddr, MaxPer64, MaxPerPrefix int
	Now                                time.Time
}

// EnrollProbe consumes one use of the token and creates the probe, in one
// transaction. Enrollments are serialised with an advisory lock so that
// concurrent enrollments cannot race past a token's uses or a Sybil cap;
// they are rare, so this costs nothing.
func (db *DB) EnrollProbe(ctx context.Context, e Enrollment) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('anycatch.enroll'))`); err != nil {
			return fmt.Errorf("enroll: lock: %w", err)
		}
		var (
			id               int64
			hash             []byte
			maxUses          *int
			uses             int
			expires, revoked *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT id, token_hash, max_uses, uses, expires_at, revoked_at
			FROM enrollment_tokens WHERE token_hash = $1`, e.TokenHash[:]).
			Scan(&id, &hash, &maxUses, &uses, &expires, &revoked)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || err == nil && subtle.ConstantTimeCompare(hash, e.TokenHash[:]) != 1:
			return fmt.Errorf("%w: unknown token", ErrTokenUnusable)
		case err != nil:
			return fmt.Errorf("enroll: token: %w", err)
		case revoked != nil:
			return fmt.Errorf("%w: token revoked", ErrTokenUnusable)
		case expires != nil && !e.Now.Before(*expires):
			return fmt.Errorf("%w: token expired", ErrTokenUnusable)
		case maxUses != nil && uses >= *maxUses:
			return fmt.Errorf("%w: token already used %d of %d times", ErrTokenUnusable, uses, *maxUses)
		}
		src := e.Src.Unmap()
		if src.IsValid() {
			type cap struct {
				limit  int
				prefix netip.Prefix
				what   string
			}
			caps := []cap{{e.MaxPerAddr, netip.PrefixFrom(src, src.BitLen()), "from this address"}}
			if src.Is6() {
				caps = append(caps, cap{e.MaxPer64, netip.PrefixFrom(src, 64).Masked(), "in this /64"})
			}
			if e.Geo.Prefix.IsValid() {
				caps = append(caps, cap{e.MaxPerPrefix, e.Geo.Prefix.Masked(), "in the announced prefix " + e.Geo.Prefix.Masked().String()})
			}
			for _, c := range caps {
				if c.limit < 0 {
					continue
				}
				var n int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM probes
					WHERE status = 'active' AND src_addr <<= $1::cidr`, c.prefix).Scan(&n); err != nil {
					return fmt.Errorf("enroll: count probes: %w", err)
				}
				if n >= c.limit {
					return fmt.Errorf("%w: %d probes already enrolled %s (limit %d)", ErrProbeLimit, n, c.what, c.limit)
				}
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = $1`, id); err != nil {
			return fmt.Errorf("enroll: use token: %w", err)
		}
		var lat, lon *float64
		if e.Location != nil {
			lat, lon = &e.Location.Lat, &e.Location.Lon
		}
		g := geoArgs(e.Geo)
		_, err = tx.Exec(ctx, `INSERT INTO probes (id, public_key, token_id, version, capabilities, src_addr,
				prefix, asn, as_name, country, continent, city, geo_lat, geo_lon, declared_lat, declared_lon, first_seen)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			e.ProbeID, e.PublicKey, id, e.Version, e.Capabilities, addrArg(src),
			g.prefix, g.asn, g.asName, g.country, g.continent, g.city, e.Geo.Lat, e.Geo.Lon, lat, lon, e.Now)
		if err != nil {
			return fmt.Errorf("enroll: insert probe: %w", classify(err))
		}
		return nil
	})
}

type geoSQL struct {
	prefix                           *netip.Prefix
	asn                              *int64
	asName, country, continent, city *string
}

func geoArgs(g ProbeGeo) geoSQL {
	var s geoSQL
	str := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	if g.Prefix.IsValid() {
		p := g.Prefix.Masked()
		s.prefix = &p
	}
	if g.ASN != 0 {
		a := int64(g.ASN)
		s.asn = &a
	}
	s.asName, s.country, s.continent, s.city = str(g.ASName), str(g.Country), str(g.Continent), str(g.City)
	return s
}

func addrArg(a netip.Addr) *netip.Addr {
	if !a.IsValid() {
		return nil
	}
	return &a
}

// ProbeCredential is what authenticating a probe's signed request needs:
// its key, whether it is disabled, and its origin, which is the key's
// role ('anycatch' for a volunteer probe, 'site' for a census site agent;
// imported 'atlas' probes have no key).
type ProbeCredential struct {
	PublicKey []byte
	Disabled  bool
	Origin    string
}

// ProbeKey returns a probe's credential (ErrNotFound when there is no
// such probe).
func (db *DB) ProbeKey(ctx context.Context, id string) (ProbeCredential, error) {
	var (
		c      ProbeCredential
		status string
	)
	err := db.pool.QueryRow(ctx, `SELECT public_key, status, origin FROM probes WHERE id = $1`, id).Scan(&c.PublicKey, &status, &c.Origin)
	if err != nil {
		return ProbeCredential{}, fmt.Errorf("probe key: %w", classify(err))
	}
	c.Disabled = status != "active"
	return c, nil
}

// SetProbeStatus enables ("active") or disables ("disabled") a probe.
func (db *DB) SetProbeStatus(ctx context.Context, id, status string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE probes SET status = $2 WHERE id = $1`, id, status)
	if err != nil {
		return fmt.Errorf("set probe status: %w", classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set probe status %s: %w", id, ErrNotFound)
	}
	return nil
}

// ProbeHeartbeat is one heartbeat to record.
type ProbeHeartbeat struct {
	ProbeID   string
	Heartbeat measure.Heartbeat
	Src       netip.Addr
	Geo       ProbeGeo
	Now       time.Time
}

// RecordHeartbeat updates a probe's reported state, last_seen and source
// address. GeoIP fields are replaced only when the lookup knew something,
// so running without GeoIP databases does not erase earlier answers. The
// declared location is what the probe last declared (none clears it).
func (db *DB) RecordHeartbeat(ctx context.Context, h ProbeHeartbeat) error {
	var lat, lon *float64
	if l := h.Heartbeat.Location; l != nil {
		lat, lon = &l.Lat, &l.Lon
	}
	g := geoArgs(h.Geo)
	known := h.Geo.ASN != 0 || h.Geo.Country != "" || h.Geo.Lat != nil
	tag, err := db.pool.Exec(ctx, `UPDATE probes SET
			version = $2, capabilities = $3, declared_lat = $4, declared_lon = $5,
			spool_depth = $6, dropped = $7, last_seen = $8, src_addr = COALESCE($9, src_addr),
			prefix = CASE WHEN $10 THEN $11 ELSE prefix END,
			asn = CASE WHEN $10 THEN $12 ELSE asn END,
			as_name = CASE WHEN $10 THEN $13 ELSE as_name END,
			country = CASE WHEN $10 THEN $14 ELSE country END,
			continent = CASE WHEN $10 THEN $15 ELSE continent END,
			city = CASE WHEN $10 THEN $16 ELSE city END,
			geo_lat = CASE WHEN $10 THEN $17 ELSE geo_lat END,
			geo_lon = CASE WHEN $10 THEN $18 ELSE geo_lon END
		WHERE id = $1`,
		h.ProbeID, h.Heartbeat.Version, h.Heartbeat.Capabilities, lat, lon,
		h.Heartbeat.SpoolDepth, h.Heartbeat.Dropped, h.Now, addrArg(h.Src.Unmap()),
		known, g.prefix, g.asn, g.asName, g.country, g.continent, g.city, h.Geo.Lat, h.Geo.Lon)
	if err != nil {
		return fmt.Errorf("record heartbeat: %w", classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record heartbeat %s: %w", h.ProbeID, ErrNotFound)
	}
	return nil
}
