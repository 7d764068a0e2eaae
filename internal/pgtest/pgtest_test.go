package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewIsMigratedAndIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := New(t), New(t)
	var version int
	if err := a.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&version); err != nil {
		t.Fatalf("read schema version: %v", err)
	}
	if version < 1 {
		t.Errorf("schema version = %d, want >= 1", version)
	}
	if _, err := a.Exec(ctx, "INSERT INTO targets (name, addr4) VALUES ('only-in-a', '198.51.100.1')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM targets").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("targets in the other test database = %d, want 0", n)
	}
}

func TestServerStopStart(t *testing.T) {
	s := NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	query := func() error {
		c, err := pgx.Connect(ctx, s.URL())
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var n int
		return c.QueryRow(ctx, "SELECT count(*) FROM targets").Scan(&n)
	}
	if err := query(); err != nil {
		t.Fatalf("before stop: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := query(); err == nil {
		t.Fatal("query while stopped succeeded, want a connection error")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := query(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ name, base, db, want string }{
		{"url", "postgres://u@h:5432/postgres?sslmode=disable", "x1", "postgres://u@h:5432/x1?sslmode=disable"},
		{"socket url", "postgres:///postgres?host=%2Ftmp%2Fs", "x1", "postgres:///x1?host=%2Ftmp%2Fs"},
		{"keyword", "host=/tmp dbname=postgres", "x1", "host=/tmp dbname=postgres dbname='x1'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := withDatabase(tc.base, tc.db); got != tc.want {
				t.Errorf("withDatabase(%q, %q) = %q, want %q", tc.base, tc.db, got, tc.want)
			}
		})
	}
}

func BenchmarkNewDatabase(b *testing.B) {
	for b.Loop() {
		NewURL(b) // dropped in b's cleanup
	}
}
