package spool

import (
	"encoding/json"
	"testing"
)

func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"nosync", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := mustOpen(b, b.TempDir(), Options{MaxBytes: 1 << 30, NoSync: bc.noSync})
			defer s.Close()
			r := testResult(b, 1)
			data, _ := json.Marshal(r)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Append(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPeekAck(b *testing.B) {
	s := mustOpen(b, b.TempDir(), Options{MaxBytes: 1 << 30, NoSync: true})
	defer s.Close()
	r := testResult(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		for range 500 {
			s.Append(r)
		}
		es, err := s.Peek(500, 1<<20)
		if err != nil || len(es) != 500 {
			b.Fatal(len(es), err)
		}
		if err := s.Ack(es); err != nil {
			b.Fatal(err)
		}
	}
}
