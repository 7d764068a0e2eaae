package spool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

func testResult(t testing.TB, i int) *measure.Result {
	t.Helper()
	now := time.Now().UTC()
	med := float64(i)
	return &measure.Result{
		V: measure.Version, ID: measure.NewUUIDv7(now), Measurement: fmt.Sprintf("m%d", i),
		Kind: measure.KindPing, Time: now, Dst: "198.51.100.1", AF: 4,
		Ping: &measure.PingResult{Mode: "raw", Size: 56, Sent: 3, Received: 3, Median: &med},
	}
}

func mustOpen(t testing.TB, dir string, opt Options) *Spool {
	t.Helper()
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func peekAll(t testing.TB, s *Spool) []Entry {
	t.Helper()
	es, err := s.Peek(1<<30, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func ids(es []Entry) []measure.UUID {
	out := make([]measure.UUID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestAppendPeekAckReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentBytes: 2048, MaxBytes: 1 << 20})
	var want []measure.UUID
	for i := range 50 {
		r := testResult(t, i)
		if err := s.Append(r); err != nil {
			t.Fatal(err)
		}
		want = append(want, r.ID)
	}
	es := peekAll(t, s)
	if got := ids(es); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("peek ids differ from appended ids")
	}
	var r measure.Result
	if err := json.Unmarshal(es[7].Data, &r); err != nil || r.Measurement != "m7" {
		t.Fatalf("entry 7 data: got msm %q err %v, want m7", r.Measurement, err)
	}
	if st := s.Stats(); st.Pending != 50 || st.Segments < 2 {
		t.Fatalf("stats %+v, want 50 pending in several segments", st)
	}
	// Ack every other entry, out of order.
	var acked []Entry
	for i := len(es) - 1; i >= 0; i -= 2 {
		acked = append(acked, es[i])
	}
	if err := s.Ack(acked); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(acked); err != nil { // idempotent
		t.Fatal(err)
	}
	s.Close()

	s = mustOpen(t, dir, Options{SegmentBytes: 2048, MaxBytes: 1 << 20})
	defer s.Close()
	es2 := peekAll(t, s)
	if len(es2) != 25 {
		t.Fatalf("after reopen got %d pending, want 25", len(es2))
	}
	for i, e := range es2 {
		if e.ID != want[2*i] {
			t.Fatalf("pending[%d] = %v, want %v", i, e.ID, want[2*i])
		}
	}
	// Limits on Peek.
	if es, _ := s.Peek(3, 1<<30); len(es) != 3 {
		t.Fatalf("Peek(3) returned %d", len(es))
	}
	if es, _ := s.Peek(100, 1); len(es) != 1 {
		t.Fatalf("Peek with tiny byte budget returned %d, want 1", len(es))
	}
	if err := s.Ack(es2); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Pending != 0 || st.Segments != 0 || st.Bytes != 0 {
		t.Fatalf("after acking everything stats %+v, want empty", st)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	acks, _ := filepath.Glob(filepath.Join(dir, "*.ack"))
	if len(segs)+len(acks) != 0 {
		t.Fatalf("files left after acking everything: %v %v", segs, acks)
	}
}

func TestTornTailTruncated(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(rec []byte) []byte
	}{
		{"half header", func(rec []byte) []byte { return rec[:5] }},
		{"half body", func(rec []byte) []byte { return rec[:len(rec)/2] }},
		{"bad crc", func(rec []byte) []byte { c := bytes.Clone(rec); c[len(c)-1] ^= 0xff; return c }},
		{"zeros", func(rec []byte) []byte { return make([]byte, 4096) }},
		{"huge length", func(rec []byte) []byte { return []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{})
			for i := range 10 {
				if err := s.Append(testResult(t, i)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			if len(segs) != 1 {
				t.Fatalf("got %d segments, want 1", len(segs))
			}
			fi, _ := os.Stat(segs[0])
			data, _ := json.Marshal(testResult(t, 99))
			rec := appendRecord(nil, record{timeMS: 1, data: data})
			f, _ := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
			f.Write(tc.tail(rec))
			f.Close()

			s = mustOpen(t, dir, Options{})
			if n := len(peekAll(t, s)); n != 10 {
				t.Fatalf("after torn tail got %d entries, want 10", n)
			}
			if fi2, _ := os.Stat(segs[0]); fi2.Size() != fi.Size() {
				t.Fatalf("segment size %d after recovery, want %d (truncated)", fi2.Size(), fi.Size())
			}
			if err := s.Append(testResult(t, 10)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = mustOpen(t, dir, Options{})
			defer s.Close()
			if n := len(peekAll(t, s)); n != 11 {
				t.Fatalf("after append following recovery got %d entries, want 11", n)
			}
		})
	}
}

func TestSizeLimitDropsOldest(t *testing.T) {
	dir := t.TempDir()
	opt := Options{MaxBytes: 32 << 10, SegmentBytes: 4 << 10, NoSync: true}
	s := mustOpen(t, dir, opt)
	var all []measure.UUID
	const n = 1000
	for i := range n {
		r := testResult(t, i)
		if err := s.Append(r); err != nil {
			t.Fatal(err)
		}
		all = append(all, r.ID)
		if st := s.Stats(); st.Bytes > opt.MaxBytes {
			t.Fatalf("spool holds %d bytes, limit %d", st.Bytes, opt.MaxBytes)
		}
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Dropped+int64(st.Pending) != n {
		t.Fatalf("dropped %d + pending %d, want > 0 dropped and sum %d", st.Dropped, st.Pending, n)
	}
	es := peekAll(t, s)
	if got, want := fmt.Sprint(ids(es)), fmt.Sprint(all[n-len(es):]); got != want {
		t.Fatalf("survivors are not the newest %d results", len(es))
	}
	s.Close()
	s = mustOpen(t, dir, opt)
	defer s.Close()
	if st2 := s.Stats(); st2.Dropped != st.Dropped || st2.Pending != st.Pending {
		t.Fatalf("after reopen stats %+v, want dropped %d pending %d", st2, st.Dropped, st.Pending)
	}
}

func TestAgeLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := mustOpen(t, t.TempDir(), Options{MaxAge: time.Hour, Now: clock, NoSync: true})
	defer s.Close()
	for i := range 5 {
		s.Append(testResult(t, i))
	}
	now = now.Add(30 * time.Minute)
	for i := range 3 {
		s.Append(testResult(t, i))
	}
	now = now.Add(45 * time.Minute) // first five are 75 min old
	if n := len(peekAll(t, s)); n != 3 {
		t.Fatalf("got %d entries, want 3 young ones", n)
	}
	if st := s.Stats(); st.Dropped != 5 || st.Pending != 3 {
		t.Fatalf("stats %+v, want 5 dropped, 3 pending", st)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	defer s.Close()
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("second Open of the same dir succeeded, want refusal")
	}
}

func TestBitRotDroppedAndCounted(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{NoSync: true})
	defer s.Close()
	for i := range 3 {
		s.Append(testResult(t, i))
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, _ := os.OpenFile(segs[0], os.O_RDWR, 0)
	f.WriteAt([]byte{'X'}, 40) // inside the first record's JSON
	f.Close()
	es := peekAll(t, s)
	if len(es) != 2 {
		t.Fatalf("got %d entries, want 2 (rotten one skipped)", len(es))
	}
	if st := s.Stats(); st.Corrupt != 1 || st.Pending != 2 {
		t.Fatalf("stats %+v, want corrupt 1 pending 2", st)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	id := measure.NewUUIDv7(time.Now())
	b := appendRecord(nil, record{timeMS: 1234, id: id, data: []byte(`{"x":1}`)})
	r, n, err := decodeRecord(append(b, 0xAA))
	if err != nil || n != len(b) || r.timeMS != 1234 || r.id != id || string(r.data) != `{"x":1}` {
		t.Fatalf("decode: got %+v n=%d err=%v", r, n, err)
	}
}
