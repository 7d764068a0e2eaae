package store

import (
	"context"
	"fmt"
	"time"
)

// EnrollmentToken describes a stored enrollment token. The secret itself is
// never stored, only its SHA-256.
type EnrollmentToken struct {
	ID        int64
	Name      string
	MaxUses   int // 0 = unlimited
	Uses      int
	ExpiresAt *time.Time
	RevokedAt *time.Time
	CreatedAt time.Time
}

const tokenColumns = `id, name, COALESCE(max_uses, 0), uses, expires_at, revoked_at, created_at`

func scanToken(row interface{ Scan(...any) error }) (EnrollmentToken, error) {
	var t EnrollmentToken
	err := row.Scan(&t.ID, &t.Name, &t.MaxUses, &t.Uses, &t.ExpiresAt, &t.RevokedAt, &t.CreatedAt)
	return t, err
}

// CreateEnrollmentToken stores a token by its hash. maxUses 0 means
// unlimited; expiresAt nil means never.
func (db *DB) CreateEnrollmentToken(ctx context.Context, name string, hash [32]byte, maxUses int, expiresAt *time.Time) (EnrollmentToken, error) {
	var mu *int
	if maxUses > 0 {
		mu = &maxUses
	}
	t, err := scanToken(db.pool.QueryRow(ctx,
		`INSERT INTO enrollment_tokens (name, token_hash, max_uses, expires_at) VALUES ($1, $2, $3, $4)
		 RETURNING `+tokenColumns, name, hash[:], mu, expiresAt))
	if err != nil {
		return EnrollmentToken{}, fmt.Errorf("create enrollment token: %w", classify(err))
	}
	return t, nil
}

// ListEnrollmentTokens returns every token, oldest first.
func (db *DB) ListEnrollmentTokens(ctx context.Context) ([]EnrollmentToken, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+tokenColumns+` FROM enrollment_tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list enrollment tokens: %w", err)
	}
	defer rows.Close()
	var out []EnrollmentToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list enrollment tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list enrollment tokens: %w", err)
	}
	return out, nil
}

// RevokeEnrollmentToken revokes token id (ErrNotFound if there is none). An
// already revoked token keeps its first revocation time.
func (db *DB) RevokeEnrollmentToken(ctx context.Context, id int64, at time.Time) error {
	tag, err := db.pool.Exec(ctx,
		`UPDATE enrollment_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("revoke enrollment token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke enrollment token %d: %w", id, ErrNotFound)
	}
	return nil
}
