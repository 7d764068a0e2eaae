package measure

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestUUIDv7(t *testing.T) {
	now := time.Date(2026, 11, 21, 5, 0, 0, 123e6, time.UTC)
	u := NewUUIDv7(now)
	if got := u.Version(); got != 7 {
		t.Fatalf("version = %d, want 7", got)
	}
	if got := u[8] >> 6; got != 0b10 {
		t.Errorf("variant bits = %b, want 10", got)
	}
	if got := u.Time(); !got.Equal(now.Truncate(time.Millisecond)) {
		t.Errorf("Time() = %s, want %s", got, now)
	}
	p, err := ParseUUID(u.String())
	if err != nil || p != u {
		t.Fatalf("ParseUUID(%s) = %s, %v; want round trip", u, p, err)
	}
}

func TestUUIDv7Monotonic(t *testing.T) {
	// Same millisecond, many ids: strictly increasing byte order.
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := NewUUIDv7(now)
	for i := 0; i < 10000; i++ {
		u := NewUUIDv7(now)
		if bytes.Compare(u[:], prev[:]) <= 0 {
			t.Fatalf("id %d: %s not after %s", i, u, prev)
		}
		prev = u
	}
}

func TestParseUUIDRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"0192d0a8-7c00-7000-8000-00000000000",   // short
		"0192d0a8-7c00-7000-8000-0000000000000", // long
		"0192d0a87c00-7000-8000-000000000000-",  // dashes misplaced
		"0192d0a8-7c00-7000-8000-00000000000g",  // not hex
	} {
		if _, err := ParseUUID(s); err == nil {
			t.Errorf("ParseUUID(%q) succeeded, want error", s)
		}
	}
}

func TestUUIDJSON(t *testing.T) {
	u := NewUUIDv7(time.Now())
	b, err := json.Marshal(struct{ ID UUID }{u})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ ID UUID }
	if err := json.Unmarshal(b, &back); err != nil || back.ID != u {
		t.Fatalf("round trip %s: got %s, %v", b, back.ID, err)
	}
	if err := json.Unmarshal([]byte(`{"ID":"nope"}`), &back); err == nil {
		t.Error("unmarshal of a bad id succeeded")
	}
}
