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

// ProbesChannel is the NOTIFY channel the schema's triggers signal, with
// the probe id as payload, when a keyed probe's status or key changes or
// it is deleted (migration 008_probe_notify.sql).
const ProbesChannel = "anycatch_probes"

// ChangeHandlers are the callbacks of [DB.ListenChanges]. Each must be
// cheap and non-blocking (the collector's Invalidate and ProbeChanged are).
type ChangeHandlers struct {
	// Targets: targets, sites or site rules changed. nil: not listened to.
	Targets func()
	// Probe: probe id's status or key changed, or it was deleted; id ""
	// means "any probe may have changed". nil: not listened to.
	Probe func(id string)
}

// ListenTargetChanges is [DB.ListenChanges] for target changes only.
func (db *DB) ListenTargetChanges(ctx context.Context, changed func()) error {
	return db.ListenChanges(ctx, ChangeHandlers{Targets: changed})
}

// ListenChanges calls h's handlers whenever targets, sites or site rules,
// or a probe's status, change in the database, by any process, until ctx
// ends. It holds one dedicated connection (LISTEN cannot share a pooled
// one) and reconnects with jittered backoff when it breaks; every handler
// is also called after every (re)connection (Probe with ""), since
// notifications sent while nobody listened are lost. Bursts are not
// coalesced here.
func (db *DB) ListenChanges(ctx context.Context, h ChangeHandlers) error {
	delay := time.Second
	for {
		start := time.Now()
		err := db.listenOnce(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			delay = time.Second
		}
		d := delay/2 + rand.N(delay/2+1)
		db.log.Warn("change listener lost its connection; reconnecting", "err", err, "in", d)
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

func (db *DB) listenOnce(ctx context.Context, h ChangeHandlers) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("listen: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if h.Targets != nil {
		if _, err := conn.Exec(ctx, "LISTEN "+TargetsChannel); err != nil {
			return fmt.Errorf("listen targets: %w", err)
		}
		h.Targets()
	}
	if h.Probe != nil {
		if _, err := conn.Exec(ctx, "LISTEN "+ProbesChannel); err != nil {
			return fmt.Errorf("listen probes: %w", err)
		}
		h.Probe("")
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: wait: %w", err)
		}
		switch {
		case n.Channel == TargetsChannel && h.Targets != nil:
			h.Targets()
		case n.Channel == ProbesChannel && h.Probe != nil:
			h.Probe(n.Payload)
		}
	}
}
