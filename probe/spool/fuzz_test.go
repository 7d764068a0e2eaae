package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary bytes to the on-disk record decoder: it
// must never panic or read past its input, and whatever it accepts must
// re-encode to exactly the bytes it consumed.
func FuzzDecodeRecord(f *testing.F) {
	good := appendRecord(nil, record{timeMS: 1700000000000, data: []byte(`{"v":1}`)})
	f.Add(good)                                       // a valid record
	f.Add(good[:len(good)-1])                         // torn body
	f.Add(good[:3])                                   // torn header
	f.Add(append(bytes.Clone(good), good...))         // two records
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}) // absurd length
	f.Add(make([]byte, 64))                           // zeros (length 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			return
		}
		if n > len(b) || n < headerSize+bodyFixedSize {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if re := appendRecord(nil, r); !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoding differs from input")
		}
	})
}

// FuzzOpenSegment puts arbitrary bytes in a segment file: Open must recover
// (truncating what it cannot frame), Peek must work, and the spool must
// accept appends afterwards.
func FuzzOpenSegment(f *testing.F) {
	good := appendRecord(nil, record{timeMS: 1700000000000, data: []byte(`{"v":1}`)})
	f.Add(good, []byte{})
	f.Add(append(bytes.Clone(good), 1, 2, 3), appendAck(nil, 0))
	f.Add([]byte("garbage"), []byte("more garbage"))
	f.Fuzz(func(t *testing.T, seg, ack []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "0000000000000001.seg"), seg, 0o600)
		os.WriteFile(filepath.Join(dir, "0000000000000001.ack"), ack, 0o600)
		s, err := Open(dir, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		es, err := s.Peek(1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(es); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(testResult(t, 1)); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Pending != 1 {
			t.Fatalf("pending %d after ack-all and one append, want 1", st.Pending)
		}
	})
}
