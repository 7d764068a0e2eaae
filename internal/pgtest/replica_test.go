package pgtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestReplicatedStreamsAndPauses(t *testing.T) {
	r := NewReplicated(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prim, err := pgx.Connect(ctx, r.PrimaryURL())
	if err != nil {
		t.Fatal(err)
	}
	defer prim.Close(context.Background())
	repl, err := pgx.Connect(ctx, r.ReplicaURL())
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close(context.Background())
	count := func() int {
		t.Helper()
		var n int
		if err := repl.QueryRow(ctx, "SELECT count(*) FROM targets").Scan(&n); err != nil {
			t.Fatalf("read replica: %v", err)
		}
		return n
	}

	var inRecovery bool
	if err := repl.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("replica pg_is_in_recovery = %v, %v; want true", inRecovery, err)
	}
	if _, err := repl.Exec(ctx, "INSERT INTO targets (name, addr4) VALUES ('x', '198.51.100.9')"); err == nil {
		t.Fatal("write on the replica succeeded, want read-only error")
	} else if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "25006" {
		t.Fatalf("write on the replica: %v, want SQLSTATE 25006", err)
	}

	if _, err := prim.Exec(ctx, "INSERT INTO targets (name, addr4) VALUES ('a', '198.51.100.1')"); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("replica targets after sync = %d, want 1", n)
	}

	if err := r.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := prim.Exec(ctx, "INSERT INTO targets (name, addr4) VALUES ('b', '198.51.100.2')"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // time enough to stream, not to apply
	if n := count(); n != 1 {
		t.Fatalf("paused replica targets = %d, want still 1", n)
	}
	if err := r.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("replica targets after resume = %d, want 2", n)
	}
}
