// Package pgtest gives each test a fresh, migrated PostgreSQL database.
//
// With DATABASE_URL set, databases are created on that server (the role
// needs CREATEDB). Otherwise the first call starts one throwaway cluster per
// test process (initdb in a temp dir, unix socket only, fsync off) with
// [pgcluster]. Either way the schema is migrated once into a template
// database and each test gets "CREATE DATABASE … TEMPLATE …" (tens of
// milliseconds), dropped when the test ends.
//
// Use [Main] from TestMain so the cluster is stopped and its directory
// removed after the tests, pass or fail:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Without it the cluster still stops when the test binary exits (the
// postmaster gets SIGINT when its parent dies) and the next run removes the
// leftover directory.
//
// Tests that stop and restart PostgreSQL use [NewServer], which gives them a
// cluster of their own so other tests are not disturbed.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/anycatch/anycatch/internal/pgcluster"
	"github.com/anycatch/anycatch/migrations"
)

// versionTable must match store.VersionTable (pgtest cannot import store:
// store's own tests use pgtest).
const versionTable = "schema_version"

// dirPrefix names the temp dirs of test clusters; the owning pid follows so
// a later run can sweep the leftovers of a killed one.
const dirPrefix = "anycatch-pgtest-"

type env struct {
	once     sync.Once
	err      error
	skip     string
	admin    *pgxpool.Pool // to the maintenance database
	adminURL string
	cluster  *pgcluster.Cluster
	dir      string
	tmpl     string
	seq      atomic.Int64

	closeOnce sync.Once
}

var shared env

// Main runs the tests, then stops the shared cluster and removes its
// directory, and exits with the tests' status. On SIGINT or SIGTERM it
// cleans up and exits too.
func Main(m *testing.M) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { // owned by Main: ends when done is closed
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "pgtest: %v: stopping the test cluster\n", s)
			shared.close()
			os.Exit(1)
		case <-done:
		}
	}()
	code := m.Run()
	signal.Stop(sigs)
	close(done)
	shared.close()
	os.Exit(code)
}

func (e *env) close() {
	e.closeOnce.Do(func() {
		if e.admin != nil {
			if e.tmpl != "" && e.cluster == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, _ = e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{e.tmpl}.Sanitize()+" WITH (FORCE)")
				cancel()
			}
			e.admin.Close()
		}
		if e.cluster != nil {
			if err := e.cluster.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n", err)
			}
		}
		if e.dir != "" {
			os.RemoveAll(e.dir)
		}
	})
}

func (e *env) setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.adminURL = os.Getenv("DATABASE_URL")
	e.tmpl = "anycatch_tmpl_" + strconv.Itoa(os.Getpid())
	if e.adminURL == "" {
		if _, err := pgcluster.FindBinDir(); err != nil {
			e.skip = fmt.Sprintf("no database for tests: set DATABASE_URL or install PostgreSQL (%v)", err)
			return
		}
		sweepLeftovers()
		dir, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			e.err = fmt.Errorf("pgtest: %w", err)
			return
		}
		e.dir = dir
		if err := os.Chmod(dir, 0o755); err != nil { // the postgres user must reach it
			e.err = fmt.Errorf("pgtest: %w", err)
			return
		}
		c, err := pgcluster.Start(ctx, pgcluster.Options{
			DataDir: filepath.Join(dir, "data"),
			Unsafe:  true,
			Logger:  slog.New(slog.DiscardHandler),
			Settings: map[string]string{
				"max_connections": "200",
			},
		})
		if err != nil {
			e.err = fmt.Errorf("pgtest: %w", err)
			return
		}
		e.cluster = c
		e.adminURL = c.URL("postgres")
	}
	cfg, err := pgxpool.ParseConfig(e.adminURL)
	if err != nil {
		e.err = fmt.Errorf("pgtest: parse DATABASE_URL: %w", err)
		return
	}
	cfg.MaxConns = 4
	if e.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		e.err = fmt.Errorf("pgtest: connect: %w", err)
		return
	}
	if e.err = createMigrated(ctx, e.admin, e.adminURL, e.tmpl); e.err != nil {
		return
	}
}

// createMigrated creates database name (dropping a leftover of that name)
// and applies the schema to it.
func createMigrated(ctx context.Context, admin *pgxpool.Pool, adminURL, name string) error {
	id := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop old %s: %w", name, err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return fmt.Errorf("pgtest: create %s: %w", name, err)
	}
	conn, err := pgx.Connect(ctx, withDatabase(adminURL, name))
	if err != nil {
		return fmt.Errorf("pgtest: connect %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return fmt.Errorf("pgtest: migrate: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return fmt.Errorf("pgtest: load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("pgtest: migrate: %w", err)
	}
	return nil
}

// withDatabase returns the connection string base pointing at database db.
func withDatabase(base, db string) string {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err == nil {
			u.Path = "/" + db
			u.RawPath = ""
			return u.String()
		}
	}
	// libpq key=value form: a later key wins.
	return base + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db) + "'"
}

func (e *env) ready(t testing.TB) {
	t.Helper()
	e.once.Do(e.setup)
	if e.skip != "" {
		t.Skip(e.skip)
	}
	if e.err != nil {
		t.Fatal(e.err)
	}
}

// NewURL creates a fresh migrated database for t, dropped when t ends, and
// returns its connection string. Close every connection to it before the
// test ends (t.Cleanup runs in reverse order, so register closes after
// calling NewURL); leftovers are terminated.
func NewURL(t testing.TB) string {
	t.Helper()
	shared.ready(t)
	name := fmt.Sprintf("anycatch_t%d_%d", os.Getpid(), shared.seq.Add(1))
	id := pgx.Identifier{name}.Sanitize()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := shared.admin.Exec(ctx, "CREATE DATABASE "+id+" TEMPLATE "+pgx.Identifier{shared.tmpl}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := shared.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop test database: %v", err)
		}
	})
	return withDatabase(shared.adminURL, name)
}

// New returns a pool on a fresh migrated database for t. The pool is closed
// and the database dropped when t ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	u := NewURL(t)
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	cfg.MaxConns = 4
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Server is a private cluster for one test that needs to stop and restart
// PostgreSQL (fault tests). Its URL stays valid across restarts.
type Server struct {
	c   *pgcluster.Cluster
	url string
}

// NewServer starts a cluster of t's own (about one second: initdb, start,
// migrate) holding one migrated database, and removes it when t ends. It
// needs the PostgreSQL binaries even when DATABASE_URL is set.
func NewServer(t testing.TB) *Server {
	t.Helper()
	if _, err := pgcluster.FindBinDir(); err != nil {
		t.Skipf("pgtest: NewServer needs PostgreSQL installed: %v", err)
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
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		DataDir: filepath.Join(dir, "data"),
		Unsafe:  true,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("pgtest: stop server: %v", err)
		}
	})
	admin, err := pgxpool.New(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer admin.Close()
	if err := createMigrated(ctx, admin, c.URL("postgres"), "anycatch"); err != nil {
		t.Fatal(err)
	}
	return &Server{c: c, url: c.URL("anycatch")}
}

// URL returns the connection string of the server's migrated database.
func (s *Server) URL() string { return s.url }

// Stop shuts PostgreSQL down (fast shutdown: connections are cut, open
// transactions roll back). Clients then get connection errors until Start.
func (s *Server) Stop(ctx context.Context) error { return s.c.Stop(ctx) }

// Start starts PostgreSQL again on the same data and socket.
func (s *Server) Start(ctx context.Context) error { return s.c.Start(ctx) }

// sweepLeftovers removes test cluster dirs whose test process is gone
// (killed before it could clean up) and whose postgres has exited.
func sweepLeftovers() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), dirPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			if pgPID, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); pgPID > 0 && alive(pgPID) {
				continue // still shutting down
			}
		}
		os.RemoveAll(d)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
