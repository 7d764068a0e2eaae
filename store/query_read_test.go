package store

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestRawDecoder(t *testing.T) {
	bin := func(oid uint32) pgconn.FieldDescription {
		return pgconn.FieldDescription{DataTypeOID: oid, Format: pgx.BinaryFormatCode}
	}
	if _, ok := newRawDecoder([]pgconn.FieldDescription{{DataTypeOID: oidFloat8, Format: pgx.TextFormatCode}}); ok {
		t.Error("text-format float8 accepted, want Scan fallback")
	}
	if _, ok := newRawDecoder([]pgconn.FieldDescription{bin(1700)}); ok {
		t.Error("numeric accepted, want Scan fallback")
	}
	d, ok := newRawDecoder([]pgconn.FieldDescription{bin(oidText), bin(oidFloat4)})
	if !ok {
		t.Fatal("text and float4 refused")
	}
	tests := []struct {
		name string
		got  func() (any, error)
		want any
	}{
		{"float4 12.5", func() (any, error) { f, err := d.float(oidFloat4, []byte{0x41, 0x48, 0, 0}); return *f, err }, 12.5},
		{"float8 -0.1", func() (any, error) {
			f, err := d.float(oidFloat8, []byte{0xbf, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a})
			return *f, err
		}, -0.1},
		{"null float", func() (any, error) { f, err := d.float(oidFloat8, nil); return f == nil, err }, true},
		{"int2 -2", func() (any, error) { return d.int(oidInt2, []byte{0xff, 0xfe}) }, int64(-2)},
		{"int8 64500", func() (any, error) { return d.int(oidInt8, []byte{0, 0, 0, 0, 0, 0, 0xfb, 0xf4}) }, int64(64500)},
		// 2026-11-21T05:00:00.000001Z is 848552400000001 µs after 2000-01-01.
		{"timestamptz", func() (any, error) {
			ts, err := d.time(oidTimestamptz, []byte{0x00, 0x03, 0x03, 0xc1, 0x00, 0x60, 0x14, 0x01})
			return ts.Format(time.RFC3339Nano), err
		}, time.Date(2026, 11, 21, 5, 0, 0, 1000, time.UTC).Format(time.RFC3339Nano)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.got()
			if err != nil || got != tc.want {
				t.Errorf("got %v (%v), want %v", got, err, tc.want)
			}
		})
	}
	if _, err := d.float(oidFloat8, []byte{1, 2, 3}); !errors.Is(err, errRawValue) {
		t.Errorf("short float8: err %v, want errRawValue", err)
	}
	if _, err := d.time(oidTimestamptz, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); !errors.Is(err, errRawValue) {
		t.Errorf("infinity: err %v, want errRawValue", err)
	}
	if a, b := d.str([]byte("ams"), true), d.str([]byte("ams"), true); a != b || len(d.intern) != 1 {
		t.Errorf("interning: %q %q, %d entries", a, b, len(d.intern))
	}
}
