package store

import (
	"context"
	"fmt"
)

const apiKeyColumns = `id, name, key_prefix, key_hash, scope, rate_per_min, created_at, last_used_at, revoked_at`

type scanner interface{ Scan(dest ...any) error }

func scanAPIKey(row scanner) (APIKey, error) {
	var k APIKey
	err := row.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &k.Scope, &k.RatePerMin, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt)
	return k, err
}

// CreateKey stores a key (prefix and sha256 hash; the secret is never
// stored) and returns it with its id and creation time.
func (db *DB) CreateKey(ctx context.Context, k APIKey) (APIKey, error) {
	out, err := scanAPIKey(db.pool.QueryRow(ctx, `INSERT INTO api_keys (name, key_prefix, key_hash, scope, rate_per_min)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+apiKeyColumns, k.Name, k.Prefix, k.Hash, k.Scope, k.RatePerMin))
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key: %w", classify(err))
	}
	return out, nil
}

// KeyByPrefix returns the key with the lookup prefix, revoked or not, or
// ErrNotFound. The caller compares hashes and checks RevokedAt.
func (db *DB) KeyByPrefix(ctx context.Context, prefix string) (APIKey, error) {
	k, err := scanAPIKey(db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE key_prefix = $1`, prefix))
	if err != nil {
		return APIKey{}, fmt.Errorf("api key: %w", classify(err))
	}
	return k, nil
}

// ListKeys returns every key, newest first.
func (db *DB) ListKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeKey revokes a key (revoking twice is not an error) or returns
// ErrNotFound.
func (db *DB) RevokeKey(ctx context.Context, id int64) error {
	tag, err := db.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke api key %d: %w", id, ErrNotFound)
	}
	return nil
}

// TouchKey records that a key was used; callers throttle it.
func (db *DB) TouchKey(ctx context.Context, id int64) error {
	_, err := db.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("touch api key: %w", err)
	}
	return nil
}
