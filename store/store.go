package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/anycatch/anycatch/migrations"
)

// VersionTable is the table tern records the applied schema version in.
const VersionTable = "schema_version"

// Errors callers map to statuses. Returned errors wrap one of these (test
// with errors.Is) when the cause is the caller's input, not the database.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")     // unique key already taken
	ErrInvalid  = errors.New("invalid data") // a check constraint refused the value
)

// Options tunes the connection pool. The zero value suits a small machine.
type Options struct {
	// MaxConns caps open connections. 0 means 8 (enough for two cores:
	// more connections only add contention).
	MaxConns int32
	// ConnectTimeout bounds establishing one connection. 0 means 5 s.
	ConnectTimeout time.Duration
	// StatementTimeout is set as the session's statement_timeout so no
	// query can hold a connection forever. 0 means 60 s; negative disables.
	StatementTimeout time.Duration
	// Logger receives slow or unusual events. nil means slog.Default().
	Logger *slog.Logger
}

// DB is anycatch's database handle. It is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	partMu sync.Mutex
	parts  map[string]bool // result partitions known to exist, by day "20060102"

	ingest ingestState // see ingest.go

	probes probeDirCache // see probedir.go
	hints  rowsHint
}

// Open connects to the database at url (a postgres:// URL or a libpq
// key=value string) and checks that it answers.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open database: parse url: %w", err)
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.StatementTimeout == 0 {
		opts.StatementTimeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg.MaxConns = opts.MaxConns
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if opts.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "anycatch"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := &DB{pool: pool, log: opts.Logger, parts: map[string]bool{}}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// Pool returns the underlying pool, for code in this module that needs raw
// access (tests, health checks). Prefer adding a method to DB.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that the database answers a query within ctx's deadline (5 s
// when ctx has none).
func (db *DB) Ping(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	var one int
	if err := db.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Migrate applies every pending migration of the embedded schema. It holds
// tern's advisory lock, so concurrent servers migrate one at a time.
func (db *DB) Migrate(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	return MigrateConn(ctx, conn.Conn())
}

// MigrateConn applies every pending migration over one connection. It is
// what Migrate does, for callers holding a plain pgx connection.
func MigrateConn(ctx context.Context, conn *pgx.Conn) error {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return fmt.Errorf("migrate: load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// SchemaVersion returns the applied schema version (0 before the first
// migration) and the newest version this binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: acquire connection: %w", err)
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), VersionTable)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return 0, 0, fmt.Errorf("schema version: load migrations: %w", err)
	}
	v, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	return int(v), len(m.Migrations), nil
}

// classify wraps err with ErrConflict, ErrInvalid or ErrNotFound when
// PostgreSQL refused it for a reason the caller controls.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s", ErrConflict, pe.Message)
		case "23514", "23502", "22P02", "22001", "22003": // check, not null, bad text repr, too long, out of range
			return fmt.Errorf("%w: %s", ErrInvalid, pe.Message)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %s", ErrNotFound, pe.Message)
		}
	}
	return err
}

// EnsureDatabase creates database name on the server at adminURL (a
// connection to any existing database, e.g. postgres) unless it exists.
func EnsureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("ensure database %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("ensure database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P04" { // duplicate_database: a concurrent creator won
			return nil
		}
		return fmt.Errorf("ensure database %s: %w", name, err)
	}
	return nil
}
