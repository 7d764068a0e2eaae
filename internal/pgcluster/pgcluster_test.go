package pgcluster

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// tempDir returns a directory the postgres user can reach when tests run as
// root (t.TempDir's parents are mode 0700).
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func startCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if _, err := FindBinDir(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func exec1(t *testing.T, url, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStartStopReuse(t *testing.T) {
	dir := filepath.Join(tempDir(t), "pg")
	c := startCluster(t, Options{DataDir: dir, Unsafe: true})
	url := c.URL("")

	if got := exec1(t, url, "SHOW listen_addresses"); got != "" {
		t.Errorf("listen_addresses = %q, want empty (unix socket only)", got)
	}
	if got := exec1(t, url, "SHOW fsync"); got != "off" {
		t.Errorf("fsync with Unsafe = %q, want off", got)
	}
	execSQL(t, url, "CREATE TABLE kept AS SELECT 42 AS x")
	pid := c.proc.Process.Pid

	ctx := context.Background()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if c.Running() {
		t.Fatal("Running after Stop = true, want false")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("postgres pid %d still alive after Stop", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("postmaster.pid after clean stop: err = %v, want not exist", err)
	}

	if err := c.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := exec1(t, url, "SELECT x::text FROM kept"); got != "42" {
		t.Errorf("after restart kept.x = %q, want 42 (data dir reused)", got)
	}
}

func TestDurableByDefault(t *testing.T) {
	c := startCluster(t, Options{DataDir: filepath.Join(tempDir(t), "pg")})
	if got := exec1(t, c.URL(""), "SHOW fsync"); got != "on" {
		t.Errorf("fsync by default = %q, want on", got)
	}
}

func TestStalePIDFile(t *testing.T) {
	dir := filepath.Join(tempDir(t), "pg")
	c := startCluster(t, Options{DataDir: dir, Unsafe: true})
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A crash leaves postmaster.pid naming a process that is gone (or, after
	// a reboot, some unrelated process: use our own pid, which is not
	// postgres).
	stale := strconv.Itoa(os.Getpid()) + "\n" + dir + "\n1700000000\n5432\n" + dir + "\n\n  5432001  0\nready   \n"
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start with stale postmaster.pid: %v", err)
	}
	if got := exec1(t, c.URL(""), "SELECT 'up'"); got != "up" {
		t.Errorf("got %q, want up", got)
	}
}

func TestLeftoverPostgresIsStopped(t *testing.T) {
	dir := filepath.Join(tempDir(t), "pg")
	first := startCluster(t, Options{DataDir: dir, Unsafe: true})
	oldPID := first.proc.Process.Pid

	// A second Cluster on the same data dir (as after a server crash that
	// left postgres running) must take over instead of failing.
	second := startCluster(t, Options{DataDir: dir, Unsafe: true})
	if got := exec1(t, second.URL(""), "SELECT 'up'"); got != "up" {
		t.Errorf("got %q, want up", got)
	}
	if first.Running() {
		t.Errorf("old postmaster (pid %d) still running", oldPID)
	}
}

func TestLongDataDirUsesShortSocketDir(t *testing.T) {
	dir := filepath.Join(tempDir(t), strings.Repeat("d", 100), "pg")
	c := startCluster(t, Options{DataDir: dir, Unsafe: true})
	if c.SocketDir() == dir {
		t.Fatalf("socket dir = data dir %q although the socket path would exceed 107 bytes", dir)
	}
	if got := exec1(t, c.URL(""), "SELECT 'up'"); got != "up" {
		t.Errorf("got %q, want up", got)
	}
	sock := c.SocketDir()
	c.Close()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("temporary socket dir %s after Close: err = %v, want removed", sock, err)
	}
}

func TestFindBinDir(t *testing.T) {
	d, err := FindBinDir()
	if err != nil {
		t.Skip(err)
	}
	for _, b := range []string{"initdb", "postgres", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(d, b)); err != nil {
			t.Errorf("%s missing in %s: %v", b, d, err)
		}
	}
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
