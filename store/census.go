package store

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
)

// CensusConfig is a target's census opt-in.
type CensusConfig struct {
	TargetID int
	Enabled  bool
	MaxPPS   int
}

// DefaultCensusMaxPPS is a target's send-rate ceiling until an admin sets
// one.
const DefaultCensusMaxPPS = 100

// CensusConfig returns a target's census settings (disabled, the default
// ceiling, when never set).
func (db *DB) CensusConfig(ctx context.Context, targetID int) (CensusConfig, error) {
	c := CensusConfig{TargetID: targetID, MaxPPS: DefaultCensusMaxPPS}
	err := db.pool.QueryRow(ctx, `SELECT enabled, max_pps FROM census_targets WHERE target_id = $1`, targetID).Scan(&c.Enabled, &c.MaxPPS)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("census config: %w", err)
	}
	return c, nil
}

// SetCensusConfig enables or disables the census of a target and sets its
// rate ceiling (1-10000 packets per second).
func (db *DB) SetCensusConfig(ctx context.Context, c CensusConfig) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO census_targets (target_id, enabled, max_pps) VALUES ($1, $2, $3)
		ON CONFLICT (target_id) DO UPDATE SET enabled = EXCLUDED.enabled, max_pps = EXCLUDED.max_pps, updated_at = now()`,
		c.TargetID, c.Enabled, c.MaxPPS)
	if err != nil {
		return fmt.Errorf("set census config: %w", classify(err))
	}
	return nil
}

// IssueSiteToken binds a new one-time site token (its SHA-256) to a
// target's site. The target must have the census enabled and the site must
// exist. A previous binding of that site is replaced and the agent
// enrolled with it is disabled.
func (db *DB) IssueSiteToken(ctx context.Context, targetID int, site string, hash [32]byte) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var enabled bool
		err := tx.QueryRow(ctx, `SELECT enabled FROM census_targets WHERE target_id = $1`, targetID).Scan(&enabled)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("issue site token: %w", err)
		}
		if !enabled {
			return fmt.Errorf("%w: the census is not enabled for this target", ErrInvalid)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM sites WHERE target_id = $1 AND code = $2`, targetID, site).Scan(&n); err != nil {
			return fmt.Errorf("issue site token: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%w: site %q", ErrNotFound, site)
		}
		if _, err := tx.Exec(ctx, `UPDATE probes SET status = 'disabled' WHERE id = (
			SELECT probe_id FROM census_agents WHERE target_id = $1 AND site = $2)`, targetID, site); err != nil {
			return fmt.Errorf("issue site token: disable old agent: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO census_agents (target_id, site, token_hash) VALUES ($1, $2, $3)
			ON CONFLICT (target_id, site) DO UPDATE SET token_hash = EXCLUDED.token_hash, probe_id = NULL,
				enrolled_at = NULL, created_at = now()`, targetID, site, hash[:])
		if err != nil {
			return fmt.Errorf("issue site token: %w", classify(err))
		}
		return nil
	})
}

// SiteEnrollment is a site agent presenting its one-time token.
type SiteEnrollment struct {
	TokenHash [32]byte
	ProbeID   string
	PublicKey []byte
	Version   string
	Src       netip.Addr
	Now       time.Time
}

// EnrollSite consumes a site token and creates the agent's probes row
// (origin 'site'), atomically. ErrTokenUnusable when the token is unknown
// or already used.
func (db *DB) EnrollSite(ctx context.Context, e SiteEnrollment) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var (
			hash   []byte
			target int
			probe  *string
		)
		err := tx.QueryRow(ctx, `SELECT token_hash, target_id, probe_id FROM census_agents WHERE token_hash = $1 FOR UPDATE`,
			e.TokenHash[:]).Scan(&hash, &target, &probe)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || err == nil && subtle.ConstantTimeCompare(hash, e.TokenHash[:]) != 1:
			return fmt.Errorf("%w: unknown site token", ErrTokenUnusable)
		case err != nil:
			return fmt.Errorf("enroll site: %w", err)
		case probe != nil:
			return fmt.Errorf("%w: site token already used", ErrTokenUnusable)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO probes (id, origin, public_key, version, src_addr, first_seen, last_seen)
			VALUES ($1, 'site', $2, $3, $4, $5, $5)`, e.ProbeID, e.PublicKey, e.Version, addrArg(e.Src), e.Now); err != nil {
			return fmt.Errorf("enroll site: insert agent: %w", classify(err))
		}
		if _, err := tx.Exec(ctx, `UPDATE census_agents SET probe_id = $1, enrolled_at = $2 WHERE token_hash = $3`,
			e.ProbeID, e.Now, e.TokenHash[:]); err != nil {
			return fmt.Errorf("enroll site: bind agent: %w", err)
		}
		return nil
	})
}

// CensusAgent is an enrolled site agent with its target.
type CensusAgent struct {
	ProbeID      string
	TargetID     int
	Target       string
	Addr4, Addr6 string
	Site         string
	Enabled      bool // the target's census opt-in
	MaxPPS       int
}

// CensusAgent returns the binding of an enrolled site agent, or
// ErrNotFound when probeID is not one.
func (db *DB) CensusAgent(ctx context.Context, probeID string) (CensusAgent, error) {
	a := CensusAgent{ProbeID: probeID}
	var a4, a6 *string
	err := db.pool.QueryRow(ctx, `SELECT a.target_id, t.name, host(t.addr4), host(t.addr6), a.site,
			coalesce(c.enabled, false), coalesce(c.max_pps, $2)
		FROM census_agents a JOIN targets t ON t.id = a.target_id
		LEFT JOIN census_targets c ON c.target_id = a.target_id
		WHERE a.probe_id = $1`, probeID, DefaultCensusMaxPPS).
		Scan(&a.TargetID, &a.Target, &a4, &a6, &a.Site, &a.Enabled, &a.MaxPPS)
	if err != nil {
		return a, fmt.Errorf("census agent %s: %w", probeID, classify(err))
	}
	if a4 != nil {
		a.Addr4 = *a4
	}
	if a6 != nil {
		a.Addr6 = *a6
	}
	return a, nil
}

// CensusRound is one census round as stored.
type CensusRound struct {
	ID        int64
	TargetID  int
	Sender    string
	Hitlist   string
	RatePPS   int
	Prefix4   int
	Prefix6   int
	Secret    []byte
	Start     time.Time
	Closes    time.Time
	LateUntil time.Time
}

const roundColumns = `id, target_id, sender, hitlist, rate_pps, prefix4, prefix6, secret, started_at, closes_at, late_until`

func scanRound(row pgx.Row) (CensusRound, error) {
	var r CensusRound
	err := row.Scan(&r.ID, &r.TargetID, &r.Sender, &r.Hitlist, &r.RatePPS, &r.Prefix4, &r.Prefix6, &r.Secret, &r.Start, &r.Closes, &r.LateUntil)
	return r, err
}

// CreateCensusRound stores a new round (r.ID is set). The target must have
// the census enabled, the rate must not exceed its ceiling and the sender
// must be one of its sites with an enrolled agent.
func (db *DB) CreateCensusRound(ctx context.Context, r *CensusRound) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var enabled bool
		maxPPS := DefaultCensusMaxPPS
		err := tx.QueryRow(ctx, `SELECT enabled, max_pps FROM census_targets WHERE target_id = $1`, r.TargetID).Scan(&enabled, &maxPPS)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("create census round: %w", err)
		}
		switch {
		case !enabled:
			return fmt.Errorf("%w: the census is not enabled for this target", ErrInvalid)
		case r.RatePPS > maxPPS:
			return fmt.Errorf("%w: rate %d/s above the target's ceiling of %d/s", ErrInvalid, r.RatePPS, maxPPS)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM census_agents WHERE target_id = $1 AND site = $2 AND probe_id IS NOT NULL`,
			r.TargetID, r.Sender).Scan(&n); err != nil {
			return fmt.Errorf("create census round: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%w: site %q has no enrolled census agent", ErrInvalid, r.Sender)
		}
		err = tx.QueryRow(ctx, `INSERT INTO census_rounds (target_id, sender, hitlist, rate_pps, prefix4, prefix6, secret,
				started_at, closes_at, late_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			r.TargetID, r.Sender, r.Hitlist, r.RatePPS, r.Prefix4, r.Prefix6, r.Secret, r.Start, r.Closes, r.LateUntil).Scan(&r.ID)
		if err != nil {
			return fmt.Errorf("create census round: %w", classify(err))
		}
		return nil
	})
}

// LiveCensusRounds returns a target's rounds whose late window has not
// ended at now, oldest first.
func (db *DB) LiveCensusRounds(ctx context.Context, targetID int, now time.Time) ([]CensusRound, error) {
	return db.rounds(ctx, `SELECT `+roundColumns+` FROM census_rounds WHERE target_id = $1 AND late_until >= $2 AND started_at <= $2 ORDER BY id`,
		targetID, now)
}

// ListCensusRounds returns a target's latest rounds, newest first.
func (db *DB) ListCensusRounds(ctx context.Context, targetID, limit int) ([]CensusRound, error) {
	return db.rounds(ctx, `SELECT `+roundColumns+` FROM census_rounds WHERE target_id = $1 ORDER BY id DESC LIMIT $2`, targetID, limit)
}

// GetCensusRound returns one round of a target (ErrNotFound).
func (db *DB) GetCensusRound(ctx context.Context, targetID int, id int64) (CensusRound, error) {
	r, err := scanRound(db.pool.QueryRow(ctx, `SELECT `+roundColumns+` FROM census_rounds WHERE target_id = $1 AND id = $2`, targetID, id))
	if err != nil {
		return r, fmt.Errorf("census round %d: %w", id, classify(err))
	}
	return r, nil
}

func (db *DB) rounds(ctx context.Context, q string, args ...any) ([]CensusRound, error) {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("census rounds: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CensusRound, error) { return scanRound(row) })
	if err != nil {
		return nil, fmt.Errorf("census rounds: %w", err)
	}
	return out, nil
}

// CensusReply is one stored reply.
type CensusReply struct {
	Round    int64
	Addr     netip.Addr
	Site     string
	Prefix   netip.Prefix
	RTTMS    *float64
	Sent     time.Time
	Received time.Time
	Late     bool
	ASN      *int64
	Country  string
	Lat, Lon *float64
}

// censusStageDDL is the per-connection staging table of census ingest.
const censusStageDDL = `CREATE TEMP TABLE IF NOT EXISTS census_stage (
	ord integer NOT NULL, round_id bigint NOT NULL, addr inet NOT NULL, site text NOT NULL, prefix cidr NOT NULL,
	rtt_ms real, sent_at timestamptz NOT NULL, received_at timestamptz NOT NULL, late boolean NOT NULL,
	asn bigint, country text, lat double precision, lon double precision
) ON COMMIT DELETE ROWS`

var censusStageColumns = []string{"ord", "round_id", "addr", "site", "prefix", "rtt_ms", "sent_at", "received_at", "late",
	"asn", "country", "lat", "lon"}

type censusKey struct {
	round int64
	addr  netip.Addr
	site  string
}

// IngestCensusReplies stores replies in one transaction and reports per
// row whether it was new (false: that round, address and site was already
// stored, e.g. a re-sent upload or a duplicated echo reply). Rows are
// COPYed into a staging table and merged with INSERT … ON CONFLICT DO
// NOTHING RETURNING, which says which were new.
func (db *DB) IngestCensusReplies(ctx context.Context, rows []CensusReply) ([]bool, error) {
	inserted := make([]bool, len(rows))
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		clear(inserted) // a retried transaction starts over
		if _, err := tx.Exec(ctx, censusStageDDL); err != nil {
			return fmt.Errorf("ingest census replies: staging table: %w", err)
		}
		src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			var cc *string
			if r.Country != "" {
				cc = &r.Country
			}
			return []any{i, r.Round, r.Addr, r.Site, r.Prefix, r.RTTMS, r.Sent, r.Received, r.Late, r.ASN, cc, r.Lat, r.Lon}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"census_stage"}, censusStageColumns, src); err != nil {
			return fmt.Errorf("ingest census replies: copy: %w", classify(err))
		}
		res, err := tx.Query(ctx, `INSERT INTO census_replies (round_id, addr, site, prefix, rtt_ms, sent_at, received_at, late,
				asn, country, lat, lon)
			SELECT round_id, addr, site, prefix, rtt_ms, sent_at, received_at, late, asn, country, lat, lon
			FROM census_stage ORDER BY ord
			ON CONFLICT DO NOTHING RETURNING round_id, addr, site`)
		if err != nil {
			return fmt.Errorf("ingest census replies: merge: %w", err)
		}
		fresh := map[censusKey]bool{}
		for res.Next() {
			var k censusKey
			if err := res.Scan(&k.round, &k.addr, &k.site); err != nil {
				res.Close()
				return fmt.Errorf("ingest census replies: merge: %w", err)
			}
			fresh[k] = true
		}
		if err := res.Err(); err != nil {
			return fmt.Errorf("ingest census replies: merge: %w", classify(err))
		}
		for i, r := range rows {
			k := censusKey{r.Round, r.Addr, r.Site}
			if fresh[k] {
				inserted[i] = true
				delete(fresh, k) // a later copy in this batch is a duplicate
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// CensusReplies returns every reply of a round, by prefix.
func (db *DB) CensusReplies(ctx context.Context, roundID int64) ([]CensusReply, error) {
	rows, err := db.pool.Query(ctx, `SELECT round_id, addr, site, prefix, rtt_ms, sent_at, received_at, late, asn,
			coalesce(country, ''), lat, lon
		FROM census_replies WHERE round_id = $1 ORDER BY prefix, site, addr`, roundID)
	if err != nil {
		return nil, fmt.Errorf("census replies: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CensusReply, error) {
		var r CensusReply
		var rtt *float32
		err := row.Scan(&r.Round, &r.Addr, &r.Site, &r.Prefix, &rtt, &r.Sent, &r.Received, &r.Late, &r.ASN, &r.Country, &r.Lat, &r.Lon)
		if rtt != nil {
			v := float64(*rtt)
			r.RTTMS = &v
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("census replies: %w", err)
	}
	return out, nil
}

// CensusCount is a number of distinct prefixes of a round: per site (ASN
// nil and Country "" with ByASN and ByCountry false), per site and ASN
// (ByASN), or per site and country (ByCountry).
type CensusCount struct {
	Site      string
	ASN       *int64
	Country   string
	ByASN     bool
	ByCountry bool
	Prefixes  int
}

// CensusTotals are a round's totals.
type CensusTotals struct {
	Prefixes  int // distinct prefixes
	MultiSite int // prefixes whose replies reached more than one site
	Late      int // replies received after the round closed
}

// CensusSummary aggregates a round in the database (a round can hold
// millions of replies): distinct prefix counts per site, per site and
// ASN, per site and country, and the totals.
func (db *DB) CensusSummary(ctx context.Context, roundID int64) ([]CensusCount, CensusTotals, error) {
	var tot CensusTotals
	rows, err := db.pool.Query(ctx, `SELECT site, asn, coalesce(country, ''), grouping(asn) = 0, grouping(country) = 0,
			count(DISTINCT prefix)
		FROM census_replies WHERE round_id = $1
		GROUP BY GROUPING SETS ((site), (site, asn), (site, country))`, roundID)
	if err != nil {
		return nil, tot, fmt.Errorf("census summary: %w", err)
	}
	counts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CensusCount, error) {
		var c CensusCount
		err := row.Scan(&c.Site, &c.ASN, &c.Country, &c.ByASN, &c.ByCountry, &c.Prefixes)
		return c, err
	})
	if err != nil {
		return nil, tot, fmt.Errorf("census summary: %w", err)
	}
	err = db.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE sites > 1), coalesce(sum(late), 0)
		FROM (SELECT count(DISTINCT site) AS sites, count(*) FILTER (WHERE late) AS late
			FROM census_replies WHERE round_id = $1 GROUP BY prefix) p`, roundID).Scan(&tot.Prefixes, &tot.MultiSite, &tot.Late)
	if err != nil {
		return nil, tot, fmt.Errorf("census totals: %w", err)
	}
	return counts, tot, nil
}

// CensusMove is a prefix whose site(s) differ between two rounds; From or
// To is "" when it replied in one round only. Several sites are joined
// by "+" in order.
type CensusMove struct {
	Prefix   netip.Prefix
	From, To string
}

// CensusChanges compares round to with round from in the database and
// returns at most limit moves in prefix order, and how many there are.
func (db *DB) CensusChanges(ctx context.Context, from, to int64, limit int) ([]CensusMove, int, error) {
	rows, err := db.pool.Query(ctx, `WITH a AS (
			SELECT prefix, string_agg(DISTINCT site, '+' ORDER BY site) AS sites FROM census_replies WHERE round_id = $1 GROUP BY prefix),
		b AS (
			SELECT prefix, string_agg(DISTINCT site, '+' ORDER BY site) AS sites FROM census_replies WHERE round_id = $2 GROUP BY prefix)
		SELECT coalesce(a.prefix, b.prefix) AS p, coalesce(a.sites, ''), coalesce(b.sites, ''), count(*) OVER ()
		FROM a FULL JOIN b ON a.prefix = b.prefix
		WHERE a.sites IS DISTINCT FROM b.sites
		ORDER BY p LIMIT $3`, from, to, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("census changes: %w", err)
	}
	total := 0
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CensusMove, error) {
		var m CensusMove
		err := row.Scan(&m.Prefix, &m.From, &m.To, &total)
		return m, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("census changes: %w", err)
	}
	return out, total, nil
}
