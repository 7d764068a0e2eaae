package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// TargetsChannel is the NOTIFY channel the schema's triggers signal on
// every change to targets, sites or site rules (migration 004_live_notify.sql).
const TargetsChannel = "anycatch_targets"

// ListenTargetChanges calls changed whenever targets, sites or site rules
// change in the database, by any process, until ctx ends. It holds one
// dedicated connection (LISTEN cannot share a pooled one) and reconnects
// with jittered backoff when it breaks; changed is also called after every
// (re)connection, since notifications sent while nobody listened are lost.
// Bursts are not coalesced here: changed must be cheap and non-blocking
// (the collector's Invalidate is).
func (db *DB) ListenTargetChanges(ctx context.Context, changed func()) error {
	delay := time.Second
	for {
		start := time.Now()
		err := db.listenOnce(ctx, changed)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			delay = time.Second
		}
		d := delay/2 + rand.N(delay/2+1)
		db.log.Warn("target change listener lost its connection; reconnecting", "err", err, "in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, 30*time.Second)
	}
}

func (db *DB) listenOnce(ctx context.Context, changed func()) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("listen targets: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+TargetsChannel); err != nil {
		return fmt.Errorf("listen targets: %w", err)
	}
	changed()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("listen targets: wait: %w", err)
		}
		changed()
	}
}
