package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// readTx runs fn in a read-only transaction with JIT compilation off (the
// report queries' cost estimates are above jit_above_cost, and compiling
// them took 100+ ms, more than running them) and custom plans (pgx
// prepares statements; a generic plan cannot see the time range).
func (db *DB) readTx(ctx context.Context, name string, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only; nothing to lose
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off; SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return tx.Commit(ctx)
}

// rawDecoder decodes report rows straight from pgx's raw column values,
// which for 10,000-row reports was several times cheaper than Scan: no
// per-column scan plans, strings of small sets (states, sites, countries)
// interned, pointer targets (RTT, coordinates, ASN) allocated in blocks.
// It only handles binary int2/int4/int8/float4/float8/timestamptz and
// text columns; ok reports whether every column of rows qualifies (else
// use Scan).
type rawDecoder struct {
	oids   []uint32
	intern map[string]string
	floats []float64
	ints   []int64
}

const (
	oidInt2        = 21
	oidInt4        = 23
	oidInt8        = 20
	oidFloat4      = 700
	oidFloat8      = 701
	oidText        = 25
	oidTimestamptz = 1184
)

func newRawDecoder(fds []pgconn.FieldDescription) (*rawDecoder, bool) {
	d := &rawDecoder{oids: make([]uint32, len(fds)), intern: map[string]string{}}
	for i, fd := range fds {
		switch fd.DataTypeOID {
		case oidText:
		case oidInt2, oidInt4, oidInt8, oidFloat4, oidFloat8, oidTimestamptz:
			if fd.Format != pgx.BinaryFormatCode {
				return nil, false
			}
		default:
			return nil, false
		}
		d.oids[i] = fd.DataTypeOID
	}
	return d, true
}

var errRawValue = errors.New("unexpected column value")

// str returns a text column; interned strings share one copy.
func (d *rawDecoder) str(raw []byte, intern bool) string {
	if !intern || len(d.intern) > 4096 {
		return string(raw)
	}
	if s, ok := d.intern[string(raw)]; ok {
		return s
	}
	s := string(raw)
	d.intern[s] = s
	return s
}

func (d *rawDecoder) float(oid uint32, raw []byte) (*float64, error) {
	if raw == nil {
		return nil, nil
	}
	var v float64
	switch {
	case oid == oidFloat8 && len(raw) == 8:
		v = math.Float64frombits(binary.BigEndian.Uint64(raw))
	case oid == oidFloat4 && len(raw) == 4:
		v = float64(math.Float32frombits(binary.BigEndian.Uint32(raw)))
	default:
		return nil, errRawValue
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, nil // a stored Infinity (see f64) is no value: reports skip it
	}
	if len(d.floats) == cap(d.floats) {
		d.floats = make([]float64, 0, 1024)
	}
	d.floats = append(d.floats, v)
	return &d.floats[len(d.floats)-1], nil
}

func (d *rawDecoder) int(oid uint32, raw []byte) (int64, error) {
	switch {
	case oid == oidInt2 && len(raw) == 2:
		return int64(int16(binary.BigEndian.Uint16(raw))), nil
	case oid == oidInt4 && len(raw) == 4:
		return int64(int32(binary.BigEndian.Uint32(raw))), nil
	case oid == oidInt8 && len(raw) == 8:
		return int64(binary.BigEndian.Uint64(raw)), nil
	}
	return 0, errRawValue
}

func (d *rawDecoder) intPtr(oid uint32, raw []byte) (*int64, error) {
	if raw == nil {
		return nil, nil
	}
	v, err := d.int(oid, raw)
	if err != nil {
		return nil, err
	}
	if len(d.ints) == cap(d.ints) {
		d.ints = make([]int64, 0, 1024)
	}
	d.ints = append(d.ints, v)
	return &d.ints[len(d.ints)-1], nil
}

// pgEpoch is timestamptz's zero: binary values count microseconds from it.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func (d *rawDecoder) time(oid uint32, raw []byte) (time.Time, error) {
	if oid != oidTimestamptz || len(raw) != 8 {
		return time.Time{}, errRawValue
	}
	us := int64(binary.BigEndian.Uint64(raw))
	if us == math.MaxInt64 || us == math.MinInt64 { // ±infinity
		return time.Time{}, errRawValue
	}
	return pgEpoch.Add(time.Duration(us) * time.Microsecond), nil
}

// rowsHint remembers how many rows a report query returned last time for a
// key, so the next call can size its result once instead of growing a
// 10,000-element slice step by step.
type rowsHint struct{ m sync.Map }

func (h *rowsHint) get(key string) int {
	if v, ok := h.m.Load(key); ok {
		return v.(int)
	}
	return 1024
}

func (h *rowsHint) set(key string, n int) { h.m.Store(key, n) }

// eachRaw calls fn with each row's raw values and a decoder for them; every
// column must be of a type rawDecoder handles.
func eachRaw(rows pgx.Rows, fn func(d *rawDecoder, v [][]byte) error) error {
	defer rows.Close()
	var d *rawDecoder
	for rows.Next() {
		if d == nil {
			var ok bool
			if d, ok = newRawDecoder(rows.FieldDescriptions()); !ok {
				return errRawValue
			}
		}
		if err := fn(d, rows.RawValues()); err != nil {
			return err
		}
	}
	return rows.Err()
}
