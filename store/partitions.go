package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Results are partitioned by UTC day: results_pYYYYMMDD holds
// [day 00:00, next day 00:00) UTC.
const (
	partitionPrefix = "results_p"
	partitionLayout = "20060102"
	day             = 24 * time.Hour
)

// PartitionName returns the name of the results partition holding t.
func PartitionName(t time.Time) string {
	return partitionPrefix + t.UTC().Format(partitionLayout)
}

func dayOf(t time.Time) time.Time { return t.UTC().Truncate(day) }

// ensurePartitions makes sure a partition exists for each day, creating the
// missing ones, each in its own short transaction (never inside an ingest
// transaction: attaching a partition locks the parent table until commit).
func (db *DB) ensurePartitions(ctx context.Context, days []time.Time) error {
	for _, d := range days {
		name := PartitionName(d)
		db.partMu.Lock()
		known := db.parts[name]
		db.partMu.Unlock()
		if known {
			continue
		}
		if _, err := db.createPartition(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// createPartition creates the partition for day d unless it exists and
// reports whether it created it. Concurrent creators (other connections,
// other servers) are fine: losing the race is success.
func (db *DB) createPartition(ctx context.Context, d time.Time) (bool, error) {
	d = dayOf(d)
	name := PartitionName(d)
	var existed bool
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&existed); err != nil {
			return err
		}
		if existed {
			return nil
		}
		// Do not queue behind long queries forever: the lock on results
		// blocks every reader queued after us.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(
			`CREATE TABLE IF NOT EXISTS %s PARTITION OF results FOR VALUES FROM ('%s') TO ('%s')`,
			pgx.Identifier{name}.Sanitize(), d.Format("2006-01-02 15:04:05Z07:00"), d.Add(day).Format("2006-01-02 15:04:05Z07:00")))
		return err
	})
	if err != nil {
		// A concurrent creator may have won between our check and our
		// CREATE (duplicate table, duplicate pg_type row, overlap).
		var exists bool
		if qerr := db.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); qerr != nil || !exists {
			return false, fmt.Errorf("create partition %s: %w", name, err)
		}
		existed = true
	}
	db.partMu.Lock()
	db.parts[name] = true
	db.partMu.Unlock()
	return !existed, nil
}

// isNoPartition reports whether err is PostgreSQL refusing a row because no
// partition covers it (one was dropped after we cached it).
func isNoPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition")
}

func (db *DB) forgetPartitions() {
	db.partMu.Lock()
	db.parts = map[string]bool{}
	db.partMu.Unlock()
}

// Partitions returns the names of the existing results partitions, oldest
// first.
func (db *DB) Partitions(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'results'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// MaintainPartitions creates the partitions for today and the next ahead
// days (relative to now) and, when retention > 0, drops every partition
// wholly older than now-retention. It returns the names it created and
// dropped. The server runs it hourly; it is safe to run concurrently.
func (db *DB) MaintainPartitions(ctx context.Context, now time.Time, ahead int, retention time.Duration) (created, dropped []string, err error) {
	today := dayOf(now)
	for i := 0; i <= ahead; i++ {
		d := today.AddDate(0, 0, i)
		made, err := db.createPartition(ctx, d)
		if err != nil {
			return created, dropped, fmt.Errorf("maintain partitions: %w", err)
		}
		if made {
			created = append(created, PartitionName(d))
		}
	}
	if retention <= 0 {
		return created, dropped, nil
	}
	names, err := db.Partitions(ctx)
	if err != nil {
		return created, dropped, fmt.Errorf("maintain partitions: %w", err)
	}
	cutoff := now.Add(-retention)
	for _, name := range names {
		d, err := time.Parse(partitionLayout, strings.TrimPrefix(name, partitionPrefix))
		if err != nil || !strings.HasPrefix(name, partitionPrefix) {
			continue // not ours (an operator's partition): leave it
		}
		if d.Add(day).After(cutoff) {
			continue
		}
		err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize())
			return err
		})
		if err != nil {
			return created, dropped, fmt.Errorf("maintain partitions: drop %s: %w", name, err)
		}
		db.partMu.Lock()
		delete(db.parts, name)
		db.partMu.Unlock()
		dropped = append(dropped, name)
	}
	return created, dropped, nil
}
