package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

const targetColumns = `id, name, description, host(addr4), host(addr6), interval_sec, specs, identity_order, enabled, created_at, updated_at`

func scanTarget(row pgx.Row) (*Target, error) {
	var t Target
	var a4, a6 *string
	var specs []byte
	if err := row.Scan(&t.ID, &t.Name, &t.Description, &a4, &a6, &t.IntervalSec, &specs, &t.IdentityOrder, &t.Enabled, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	if a4 != nil {
		t.Addr4 = *a4
	}
	if a6 != nil {
		t.Addr6 = *a6
	}
	if err := json.Unmarshal(specs, &t.Specs); err != nil {
		return nil, fmt.Errorf("decode specs of target %s: %w", t.Name, err)
	}
	if t.Specs == nil {
		t.Specs = []measure.Spec{}
	}
	return &t, nil
}

// targetArgs returns the column values of t, checking the addresses.
func targetArgs(t *Target) (addr4, addr6 *netip.Addr, specs []byte, order []string, err error) {
	parse := func(s string, want4 bool) (*netip.Addr, error) {
		if s == "" {
			return nil, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Is4() != want4 || a.Zone() != "" {
			return nil, fmt.Errorf("%w: %q is not an IPv%s address", ErrInvalid, s, map[bool]string{true: "4", false: "6"}[want4])
		}
		return &a, nil
	}
	if addr4, err = parse(t.Addr4, true); err != nil {
		return
	}
	if addr6, err = parse(t.Addr6, false); err != nil {
		return
	}
	s := t.Specs
	if s == nil {
		s = []measure.Spec{}
	}
	if specs, err = json.Marshal(s); err != nil {
		return
	}
	order = t.IdentityOrder
	if order == nil {
		order = []string{catchment.SourceHostnameBind, catchment.SourceIDServer, catchment.SourceNSID}
	}
	return
}

// CreateTarget inserts t and sets its ID and timestamps. A zero
// IntervalSec means 300 s; a nil IdentityOrder the default order. It returns
// ErrConflict when the name is taken and ErrInvalid for values the schema
// refuses.
func (db *DB) CreateTarget(ctx context.Context, t *Target) error {
	a4, a6, specs, order, err := targetArgs(t)
	if err != nil {
		return fmt.Errorf("create target: %w", err)
	}
	if t.IntervalSec == 0 {
		t.IntervalSec = 300
	}
	err = db.pool.QueryRow(ctx, `
		INSERT INTO targets (name, description, addr4, addr6, interval_sec, specs, identity_order, enabled)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING id, identity_order, created_at, updated_at`,
		t.Name, t.Description, a4, a6, t.IntervalSec, specs, order, t.Enabled,
	).Scan(&t.ID, &t.IdentityOrder, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return fmt.Errorf("create target %q: %w", t.Name, classify(err))
	}
	return nil
}

// UpdateTarget stores every field of t (matched by t.ID) and refreshes
// t.UpdatedAt. It returns ErrNotFound when there is no such target.
func (db *DB) UpdateTarget(ctx context.Context, t *Target) error {
	a4, a6, specs, order, err := targetArgs(t)
	if err != nil {
		return fmt.Errorf("update target: %w", err)
	}
	err = db.pool.QueryRow(ctx, `
		UPDATE targets SET name = $2, description = $3, addr4 = $4, addr6 = $5, interval_sec = $6,
			specs = $7, identity_order = $8, enabled = $9, updated_at = now()
		WHERE id = $1
		RETURNING created_at, updated_at`,
		t.ID, t.Name, t.Description, a4, a6, t.IntervalSec, specs, order, t.Enabled,
	).Scan(&t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return fmt.Errorf("update target %d: %w", t.ID, classify(err))
	}
	t.IdentityOrder = order
	return nil
}

// DeleteTarget removes a target with its sites, rules and catchment state
// (latest and changes). Its results are not deleted here (they may be
// millions of rows); they age out with the retention period.
func (db *DB) DeleteTarget(ctx context.Context, id int) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM targets WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM catchment_latest WHERE target_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM catchment_changes WHERE target_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete target %d: %w", id, classify(err))
	}
	return nil
}

// GetTarget returns the target called name, or ErrNotFound.
func (db *DB) GetTarget(ctx context.Context, name string) (*Target, error) {
	t, err := scanTarget(db.pool.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE name = $1`, name))
	if err != nil {
		return nil, fmt.Errorf("get target %q: %w", name, classify(err))
	}
	return t, nil
}

// GetTargetByID returns the target with id, or ErrNotFound.
func (db *DB) GetTargetByID(ctx context.Context, id int) (*Target, error) {
	t, err := scanTarget(db.pool.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get target %d: %w", id, classify(err))
	}
	return t, nil
}

// ListTargets returns every target ordered by name.
func (db *DB) ListTargets(ctx context.Context) ([]Target, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+targetColumns+` FROM targets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	defer rows.Close()
	out := []Target{}
	for rows.Next() {
		t, err := scanTarget(rows)
		if err != nil {
			return nil, fmt.Errorf("list targets: %w", err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	return out, nil
}

// PutSite creates or replaces the site (targetID, s.Code). It returns
// ErrNotFound when the target does not exist and ErrInvalid for a bad code
// or address.
func (db *DB) PutSite(ctx context.Context, targetID int, s Site) error {
	parse := func(v string) (*netip.Addr, error) {
		if v == "" {
			return nil, nil
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%w: unicast address %q: %w", ErrInvalid, v, err)
		}
		return &a, nil
	}
	u4, err := parse(s.Unicast4)
	if err != nil {
		return fmt.Errorf("put site: %w", err)
	}
	u6, err := parse(s.Unicast6)
	if err != nil {
		return fmt.Errorf("put site: %w", err)
	}
	_, err = db.pool.Exec(ctx, `
		INSERT INTO sites (target_id, code, name, lat, lon, unicast4, unicast6)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (target_id, code) DO UPDATE SET name = EXCLUDED.name, lat = EXCLUDED.lat,
			lon = EXCLUDED.lon, unicast4 = EXCLUDED.unicast4, unicast6 = EXCLUDED.unicast6`,
		targetID, s.Code, s.Name, s.Lat, s.Lon, u4, u6)
	if err != nil {
		return fmt.Errorf("put site %q: %w", s.Code, classify(err))
	}
	return nil
}

// DeleteSite removes one site, or returns ErrNotFound.
func (db *DB) DeleteSite(ctx context.Context, targetID int, code string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sites WHERE target_id = $1 AND code = $2`, targetID, code)
	if err != nil {
		return fmt.Errorf("delete site %q: %w", code, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete site %q: %w", code, ErrNotFound)
	}
	return nil
}

// ListSites returns the sites of a target ordered by code (empty, not an
// error, for an unknown target).
func (db *DB) ListSites(ctx context.Context, targetID int) ([]Site, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT code, name, lat, lon, host(unicast4), host(unicast6)
		FROM sites WHERE target_id = $1 ORDER BY code`, targetID)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	out := []Site{}
	for rows.Next() {
		var s Site
		var u4, u6 *string
		if err := rows.Scan(&s.Code, &s.Name, &s.Lat, &s.Lon, &u4, &u6); err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		if u4 != nil {
			s.Unicast4 = *u4
		}
		if u6 != nil {
			s.Unicast6 = *u6
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return out, nil
}

// ReplaceRules sets the ordered identity -> site rules of a target in one
// transaction. It returns ErrNotFound for an unknown target and ErrInvalid
// for a source or match kind the schema does not know; pattern syntax is the
// caller's to check.
func (db *DB) ReplaceRules(ctx context.Context, targetID int, rules []catchment.Rule) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var one int
		// Lock the target so concurrent replacements serialize.
		if err := tx.QueryRow(ctx, `SELECT 1 FROM targets WHERE id = $1 FOR UPDATE`, targetID).Scan(&one); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM site_rules WHERE target_id = $1`, targetID); err != nil {
			return err
		}
		if len(rules) == 0 {
			return nil
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"site_rules"},
			[]string{"target_id", "position", "source", "match", "pattern", "site", "note"},
			pgx.CopyFromSlice(len(rules), func(i int) ([]any, error) {
				r := rules[i]
				return []any{targetID, i, r.Source, r.Match, r.Pattern, r.Site, r.Note}, nil
			}))
		return err
	})
	if err != nil {
		return fmt.Errorf("replace rules of target %d: %w", targetID, classify(err))
	}
	return nil
}

// ListRules returns a target's rules in the order they are tried.
func (db *DB) ListRules(ctx context.Context, targetID int) ([]catchment.Rule, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT source, match, pattern, site, note FROM site_rules
		WHERE target_id = $1 ORDER BY position`, targetID)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	defer rows.Close()
	out := []catchment.Rule{}
	for rows.Next() {
		var r catchment.Rule
		if err := rows.Scan(&r.Source, &r.Match, &r.Pattern, &r.Site, &r.Note); err != nil {
			return nil, fmt.Errorf("list rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	return out, nil
}
