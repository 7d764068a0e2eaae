package store

import (
	"context"
	"fmt"

	"github.com/anycatch/anycatch/catchment"
)

// TargetWithRules is an enabled target with its ordered site rules, what
// the collector needs to schedule and identify.
type TargetWithRules struct {
	Target
	Rules []catchment.Rule
}

// EnabledTargetsWithRules returns every enabled target and its rules in
// two queries.
func (db *DB) EnabledTargetsWithRules(ctx context.Context) ([]TargetWithRules, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name, description, COALESCE(host(addr4), ''), COALESCE(host(addr6), ''),
			interval_sec, specs, identity_order, enabled, created_at, updated_at
		FROM targets WHERE enabled ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("enabled targets: %w", err)
	}
	var out []TargetWithRules
	byID := map[int]int{}
	for rows.Next() {
		var t TargetWithRules
		if err := rows.Scan(&t.ID, &t.Name, &t.Description, &t.Addr4, &t.Addr6, &t.IntervalSec, &t.Specs,
			&t.IdentityOrder, &t.Enabled, &t.CreatedAt, &t.UpdatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("enabled targets: %w", err)
		}
		byID[t.ID] = len(out)
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("enabled targets: %w", err)
	}
	rows, err = db.pool.Query(ctx, `SELECT r.target_id, r.source, r.match, r.pattern, r.site, r.note
		FROM site_rules r JOIN targets t ON t.id = r.target_id WHERE t.enabled ORDER BY r.target_id, r.position`)
	if err != nil {
		return nil, fmt.Errorf("site rules: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		var r catchment.Rule
		if err := rows.Scan(&id, &r.Source, &r.Match, &r.Pattern, &r.Site, &r.Note); err != nil {
			return nil, fmt.Errorf("site rules: %w", err)
		}
		if i, ok := byID[id]; ok {
			out[i].Rules = append(out[i].Rules, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("site rules: %w", err)
	}
	return out, nil
}
