package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/anycatch/anycatch/internal/cliflag"
	"github.com/anycatch/anycatch/internal/pgcluster"
	"github.com/anycatch/anycatch/store"
)

// dbFlags are the flags every subcommand that opens the database shares.
type dbFlags struct {
	url     string
	dataDir string
	// own is set by serve: it runs the embedded cluster and stops it on
	// exit. Every other subcommand attaches to a cluster a running server
	// already has up, and starts (then stops) one only when none runs.
	own bool
	// create lets the command initialise a new private cluster when the
	// data dir has none (serve, migrate, seed). Admin commands never do:
	// a mistyped or ignored --data-dir must not leave a fresh cluster in
	// /var/lib/anycatch and then fail with "target does not exist".
	create bool
}

func (f *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "database-url", os.Getenv("DATABASE_URL"),
		"PostgreSQL URL (default $DATABASE_URL); empty runs a private cluster in <data-dir>/postgres")
	fs.StringVar(&f.dataDir, "data-dir", defaultDataDir(),
		"state directory (the private PostgreSQL cluster lives here)")
}

// defaultDataDir is /var/lib/anycatch for root, else
// $XDG_STATE_HOME/anycatch or ~/.local/state/anycatch.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/anycatch"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "anycatch")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "anycatch")
	}
	return "anycatch-state"
}

// embeddedDatabase is the database name in the private cluster.
const embeddedDatabase = "anycatch"

// database is an open store and, when it runs one, the private cluster.
type database struct {
	*store.DB
	cluster *pgcluster.Cluster
	lock    *os.File // serve's lock on the data dir
	log     *slog.Logger
}

// openDatabase opens f.url, or starts the private cluster in the data dir
// and opens its anycatch database (created on first start). It does not
// migrate. The caller must call close.
func openDatabase(ctx context.Context, f dbFlags, opts store.Options, log *slog.Logger) (*database, error) {
	opts.Logger = log
	if f.url != "" {
		db, err := store.Open(ctx, f.url, opts)
		if err != nil {
			return nil, err
		}
		return &database{DB: db, log: log}, nil
	}
	if f.dataDir == "" {
		return nil, errors.New("no database: set --database-url, $DATABASE_URL or --data-dir")
	}
	pgDir := filepath.Join(f.dataDir, "postgres")
	if !f.own && !f.create {
		if _, err := os.Stat(filepath.Join(pgDir, "PG_VERSION")); err != nil {
			return nil, fmt.Errorf("no database in data dir %s (no PostgreSQL cluster in %s): pass the --data-dir the server uses or --database-url, or create it with 'anycatch-server migrate --data-dir %s'", f.dataDir, pgDir, f.dataDir)
		}
	}
	// Traversable by the postgres user when we run as root (it owns only
	// the postgres directory below).
	if err := os.MkdirAll(f.dataDir, 0o711); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	var lock *os.File
	if f.own {
		var err error
		if lock, err = lockDataDir(f.dataDir); err != nil {
			return nil, err
		}
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: pgDir, Logger: log, Attach: !f.own})
	if err != nil {
		closeLock(lock)
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	if err := store.EnsureDatabase(ctx, c.URL("postgres"), embeddedDatabase); err != nil {
		c.Close()
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	db, err := store.Open(ctx, c.URL(embeddedDatabase), opts)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	return &database{DB: db, cluster: c, lock: lock, log: log}, nil
}

// lockDataDir takes an exclusive lock on <dir>/serve.lock so that two
// servers never run one embedded cluster. The lock lasts while the file
// stays open.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "serve.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another anycatch-server is already serving from %s (its embedded database is in use): %w", dir, err)
	}
	return f, nil
}

func closeLock(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// close closes the pool and stops the private cluster, if any, within a
// bounded time.
func (d *database) close() error {
	d.DB.Close()
	defer closeLock(d.lock)
	if d.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := d.cluster.Stop(ctx)
	d.cluster.Close()
	if err != nil {
		return fmt.Errorf("stop embedded database: %w", err)
	}
	return nil
}

// cmdMigrate applies pending migrations and prints the schema version.
func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbf := dbFlags{create: true}
	dbf.register(fs)
	var lf logFlags
	lf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: anycatch-server migrate [flags]")
		fmt.Fprintln(stderr, "\nApplies every pending schema migration (safe to run concurrently) and prints the version.")
		fs.PrintDefaults()
	}
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := cliflag.Exactly("migrate", pos, 0, ""); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db, err := openDatabase(ctx, dbf, store.Options{MaxConns: 2}, log)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer db.close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	cur, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d (latest %d)\n", cur, latest)
	return nil
}
