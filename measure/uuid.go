package measure

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// UUID is an RFC 9562 UUID. Results use version 7 (time-ordered), generated
// by the probe, so that ids sort by time and a retried upload carries the
// same key.
type UUID [16]byte

// ErrBadUUID is returned for text that is not a canonical UUID.
var ErrBadUUID = errors.New("not a canonical UUID (8-4-4-4-12 hex digits)")

var v7 struct {
	sync.Mutex
	lastMs  int64
	counter uint16 // 12-bit sequence within one millisecond (rand_a)
}

// NewUUIDv7 returns a new version-7 UUID for time t. Within one process, ids
// for the same millisecond are strictly increasing (a 12-bit counter in
// rand_a, RFC 9562 method 1); the remaining 62 bits are random.
func NewUUIDv7(t time.Time) UUID {
	var u UUID
	if _, err := rand.Read(u[:]); err != nil {
		panic("measure: crypto/rand failed: " + err.Error())
	}
	ms := t.UnixMilli()
	v7.Lock()
	if ms <= v7.lastMs {
		// Clock did not advance (or went back): stay on the last
		// millisecond and bump the counter so ordering holds.
		ms = v7.lastMs
		v7.counter++
		if v7.counter > 0x0fff {
			ms++
			v7.counter = 0
		}
	} else {
		v7.counter = binary.BigEndian.Uint16(u[6:8]) & 0x01ff // random start, room to count up
	}
	v7.lastMs = ms
	seq := v7.counter
	v7.Unlock()

	u[0] = byte(ms >> 40)
	u[1] = byte(ms >> 32)
	u[2] = byte(ms >> 24)
	u[3] = byte(ms >> 16)
	u[4] = byte(ms >> 8)
	u[5] = byte(ms)
	u[6] = 0x70 | byte(seq>>8)&0x0f
	u[7] = byte(seq)
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant
	return u
}

// ParseUUID parses the canonical 36-character form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, ErrBadUUID
	}
	var buf [32]byte
	copy(buf[0:8], s[0:8])
	copy(buf[8:12], s[9:13])
	copy(buf[12:16], s[14:18])
	copy(buf[16:20], s[19:23])
	copy(buf[20:32], s[24:36])
	if _, err := hex.Decode(u[:], buf[:]); err != nil {
		return UUID{}, ErrBadUUID
	}
	return u, nil
}

// Version returns the UUID version number (7 for result ids).
func (u UUID) Version() int { return int(u[6] >> 4) }

// IsZero reports whether u is the nil UUID.
func (u UUID) IsZero() bool { return u == UUID{} }

// Time returns the millisecond timestamp embedded in a version-7 UUID.
func (u UUID) Time() time.Time {
	ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
	return time.UnixMilli(ms).UTC()
}

func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// MarshalText implements encoding.TextMarshaler.
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (u *UUID) UnmarshalText(b []byte) error {
	p, err := ParseUUID(string(b))
	if err != nil {
		return err
	}
	*u = p
	return nil
}
