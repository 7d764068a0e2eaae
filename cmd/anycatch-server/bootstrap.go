package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/store"
)

// bootstrapSecrets pre-creates credentials whose secrets an automated
// deployment already knows, so that nobody has to run a second command
// against the database: ANYCATCH_BOOTSTRAP_ADMIN_KEY (an admin API key in
// the API's key format, see `anycatch-server key create`) and
// ANYCATCH_BOOTSTRAP_TOKEN (a multi-use enrollment token). Only hashes are
// stored; an existing credential with the same secret is left alone.
func bootstrapSecrets(ctx context.Context, db *store.DB, getenv func(string) string, log *slog.Logger) error {
	if secret := getenv("ANYCATCH_BOOTSTRAP_ADMIN_KEY"); secret != "" {
		prefix, ok := api.KeyPrefix(secret)
		if !ok {
			return errors.New("ANYCATCH_BOOTSTRAP_ADMIN_KEY is not an API key (want ack_<8 hex>_<43 base64url>, as `anycatch-server key create` prints)")
		}
		hash := sha256.Sum256([]byte(secret))
		k, err := db.KeyByPrefix(ctx, prefix)
		switch {
		case err == nil && !bytes.Equal(k.Hash, hash[:]):
			return fmt.Errorf("ANYCATCH_BOOTSTRAP_ADMIN_KEY: another key with prefix %s exists", prefix)
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
			if _, err := db.CreateKey(ctx, store.APIKey{Name: "bootstrap", Prefix: prefix, Hash: hash[:], Scope: api.ScopeAdmin}); err != nil {
				return fmt.Errorf("bootstrap admin key: %w", err)
			}
			log.Info("created the bootstrap admin API key", "prefix", prefix)
		default:
			return fmt.Errorf("bootstrap admin key: %w", err)
		}
	}
	if secret := getenv("ANYCATCH_BOOTSTRAP_TOKEN"); secret != "" {
		if len(secret) < 16 {
			return errors.New("ANYCATCH_BOOTSTRAP_TOKEN: use at least 16 random characters")
		}
		_, err := db.CreateEnrollmentToken(ctx, "bootstrap", collector.HashToken(secret), 0, nil)
		switch {
		case errors.Is(err, store.ErrConflict): // created by an earlier start
		case err != nil:
			return fmt.Errorf("bootstrap token: %w", err)
		default:
			log.Info("created the bootstrap enrollment token")
		}
	}
	return nil
}
