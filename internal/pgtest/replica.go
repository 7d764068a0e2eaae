package pgtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/anycatch/anycatch/internal/pgcluster"
)

// Replicated is a PostgreSQL primary with one streaming hot standby, both
// private to one test: the database "anycatch" is migrated on the primary
// and replicated to the standby. Use it for read-replica tests (replica
// lag, a report read from the standby) and cluster tests that want the
// production layout of one primary and a streaming replica.
//
// Replication is asynchronous, as in production: a write committed on the
// primary shows on the standby some milliseconds later. [Replicated.Sync]
// waits for the standby to catch up; [Replicated.PauseReplay] freezes it
// so a test can hold a known lag.
type Replicated struct {
	primary, standby *pgcluster.Cluster
}

// NewReplicated starts the primary (initdb, migrate) and a standby copied
// from it with pg_basebackup -R, and stops and removes both when t ends.
// About two seconds. It needs the PostgreSQL binaries even when
// DATABASE_URL is set.
func NewReplicated(t testing.TB) *Replicated {
	t.Helper()
	if _, err := pgcluster.FindBinDir(); err != nil {
		t.Skipf("pgtest: NewReplicated needs PostgreSQL installed: %v", err)
	}
	dir, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	settings := map[string]string{
		"max_connections": "100",
		// Send WAL promptly: with synchronous_commit off (Unsafe) the WAL
		// writer decides when a commit reaches the standby.
		"wal_writer_delay": "10ms",
	}
	p, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "primary"), Unsafe: true, Logger: quiet, Settings: settings})
	if err != nil {
		t.Fatalf("pgtest: start primary: %v", err)
	}
	r := &Replicated{primary: p}
	t.Cleanup(func() {
		// Standby first, so it does not retry a vanished primary.
		if r.standby != nil {
			if err := r.standby.Close(); err != nil {
				t.Errorf("pgtest: stop standby: %v", err)
			}
		}
		if err := p.Close(); err != nil {
			t.Errorf("pgtest: stop primary: %v", err)
		}
	})
	admin, err := pgxpool.New(ctx, p.URL("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect primary: %v", err)
	}
	err = createMigrated(ctx, admin, p.URL("postgres"), "anycatch")
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgcluster.StartStandby(ctx, p, pgcluster.Options{DataDir: filepath.Join(dir, "standby"), Port: 5433, Unsafe: true, Logger: quiet, Settings: settings})
	if err != nil {
		t.Fatalf("pgtest: start standby: %v", err)
	}
	r.standby = s
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// PrimaryURL is the connection string of the migrated database on the
// primary (read-write).
func (r *Replicated) PrimaryURL() string { return r.primary.URL("anycatch") }

// ReplicaURL is the connection string of the same database on the
// standby (read-only; writes fail with SQLSTATE 25006).
func (r *Replicated) ReplicaURL() string { return r.standby.URL("anycatch") }

// Primary and Standby are the clusters, for tests that stop, restart or
// read the logs of one of them.
func (r *Replicated) Primary() *pgcluster.Cluster { return r.primary }

// Standby is the standby cluster; see [Replicated.Primary].
func (r *Replicated) Standby() *pgcluster.Cluster { return r.standby }

// PauseReplay stops the standby applying WAL (pg_wal_replay_pause): it
// keeps receiving, but its data stays as of now until ResumeReplay, so a
// test can read a replica that lags by exactly the writes made since.
func (r *Replicated) PauseReplay(ctx context.Context) error {
	return r.onStandby(ctx, "SELECT pg_wal_replay_pause()")
}

// ResumeReplay lets the standby apply WAL again (pg_wal_replay_resume).
func (r *Replicated) ResumeReplay(ctx context.Context) error {
	return r.onStandby(ctx, "SELECT pg_wal_replay_resume()")
}

// Sync waits until the standby has replayed everything the primary had
// committed when Sync was called (or ctx ends). It does not resume a paused
// replay: then it waits for ctx.
func (r *Replicated) Sync(ctx context.Context) error {
	pc, err := pgx.Connect(ctx, r.primary.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: sync: connect primary: %w", err)
	}
	var lsn string
	// A WAL record of its own: its end is a position the standby's replay
	// reaches even when the primary then goes idle (the current insert
	// position may sit past a page header no record ends at).
	err = pc.QueryRow(ctx, "SELECT pg_logical_emit_message(false, 'pgtest-sync', '')::text").Scan(&lsn)
	pc.Close(context.Background())
	if err != nil {
		return fmt.Errorf("pgtest: sync: primary lsn: %w", err)
	}
	sc, err := pgx.Connect(ctx, r.standby.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: sync: connect standby: %w", err)
	}
	defer sc.Close(context.Background())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var done bool
		if err := sc.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn).Scan(&done); err != nil {
			return fmt.Errorf("pgtest: sync: standby lsn: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: sync: standby has not replayed %s: %w", lsn, ctx.Err())
		case <-tick.C:
		}
	}
}

func (r *Replicated) onStandby(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, r.standby.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: connect standby: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}
