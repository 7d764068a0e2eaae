package store

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// randomBlock makes a block of n sorted, distinct entries.
func randomBlock(rng *rand.Rand, start int64, n int) *block {
	b := &block{Start: start, Sites: []string{"", "ams", "fra", "iad", "sin"}}
	num := uint32(rng.IntN(5))
	for len(b.Entries) < n {
		num += uint32(rng.IntN(3)) // repeats: several (af, site) of one probe
		e := blockEntry{Num: num, AF: 4, Site: uint16(rng.IntN(len(b.Sites))), Results: uint32(1 + rng.IntN(20))}
		if rng.IntN(3) == 0 {
			e.AF = 6
		}
		e.Answered = uint32(rng.IntN(int(e.Results) + 1))
		if e.Answered > 0 {
			e.RTTSum = float64(e.Answered) * (1 + rng.Float64()*300)
			e.RTTMin = float32(1 + rng.Float64()*50)
		}
		if rng.IntN(2) == 0 {
			e.LossN = uint32(rng.IntN(int(e.Results) + 1))
			if e.LossN > 0 {
				e.LossSum = float32(rng.Float64() * float64(e.LossN))
			}
		}
		e.First = start + int64(rng.IntN(3600))
		e.Last = e.First + int64(rng.IntN(3600))
		b.Entries = append(b.Entries, e)
	}
	slices.SortFunc(b.Entries, compareEntries)
	b.Entries = slices.CompactFunc(b.Entries, func(x, y blockEntry) bool { return compareEntries(x, y) == 0 })
	return b
}

func TestBlockRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 50, 3000} {
		b := randomBlock(rng, 1_700_000_000, n)
		data := encodeBlock(nil, b)
		got, err := decodeBlock(data, b.Start)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(b.Entries) == 0 {
			b.Entries = []blockEntry{}
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("n=%d: round trip differs", n)
		}
		if !bytes.Equal(encodeBlock(nil, got), data) {
			t.Fatalf("n=%d: re-encoding differs", n)
		}
	}
}

func TestBlockDecodeRejectsCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := randomBlock(rng, 1_700_000_000, 40)
	data := encodeBlock(nil, b)
	bad := map[string][]byte{
		"empty":       {},
		"magic":       append([]byte("XCRB"), data[4:]...),
		"version":     append(append([]byte("ACRB"), 9), data[5:]...),
		"truncated":   data[:len(data)-3],
		"trailing":    append(slices.Clone(data), 0),
		"header only": data[:6],
	}
	// An entry whose probe number goes backwards is out of order: encode
	// two entries by hand with a repeated (probe, af, site).
	dup := &block{Start: b.Start, Sites: []string{"a"}, Entries: []blockEntry{{Num: 7, AF: 4, Results: 1}, {Num: 7, AF: 4, Results: 1}}}
	bad["duplicate entry"] = encodeBlock(nil, dup)
	for name, d := range bad {
		if _, err := decodeBlock(d, b.Start); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	// Every single-byte change either decodes or fails cleanly.
	for i := range data {
		d := slices.Clone(data)
		d[i] ^= 0xff
		_, _ = decodeBlock(d, b.Start)
	}
}

func FuzzDecodeBlock(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 5, 30} {
		f.Add(encodeBlock(nil, randomBlock(rng, 1_700_000_000, n)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBlock(data, 1_700_000_000)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a block that decodes the same.
		again, err := decodeBlock(encodeBlock(nil, b), b.Start)
		if err != nil || !reflect.DeepEqual(again, b) {
			t.Fatalf("re-encoded block differs: %v", err)
		}
	})
}

func TestMergeBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a := randomBlock(rng, 0, 200)
	b := randomBlock(rng, 3600, 200)
	b.Sites = []string{"fra", "zrh", "", "ams", "sin"} // another dictionary order
	m := mergeBlocks(0, a, b)
	// The merge decodes back and every (probe, af, site) sums its inputs.
	type key struct {
		num  uint32
		af   uint8
		site string
	}
	want := map[key]blockEntry{}
	for _, in := range []*block{a, b} {
		for _, e := range in.Entries {
			k := key{e.Num, e.AF, in.Sites[e.Site]}
			w, ok := want[k]
			if !ok {
				want[k] = e
				continue
			}
			addEntry(&w, &e)
			want[k] = w
		}
	}
	got, err := decodeBlock(encodeBlock(nil, m), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(got.Entries), len(want))
	}
	for _, e := range got.Entries {
		w := want[key{e.Num, e.AF, got.Sites[e.Site]}]
		w.Site = e.Site
		if e != w {
			t.Fatalf("entry %+v, want %+v", e, w)
		}
	}
}

func TestBlockCover(t *testing.T) {
	all := func(int, int64) bool { return true }
	none := func(int, int64) bool { return false }
	rng := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 2000; i++ {
		from := int64(480_000 + rng.IntN(5000))
		to := from + int64(rng.IntN(3000))
		for _, have := range []func(int, int64) bool{all, none, func(l int, h int64) bool { return (h>>l)%3 != 0 }} {
			refs := blockCover(from, to, have)
			pos := from
			perLevel := map[int]int{}
			for _, r := range refs {
				span := int64(1) << r.Level
				if r.Hour != pos || r.Hour%span != 0 || r.Level > maxBlockLevel || (r.Level > 0 && !have(r.Level, r.Hour)) {
					t.Fatalf("[%d,%d): bad block %+v at %d", from, to, r, pos)
				}
				pos += span
				perLevel[r.Level]++
			}
			if pos != to {
				t.Fatalf("[%d,%d): covered up to %d", from, to, pos)
			}
			if reflect.ValueOf(have).Pointer() == reflect.ValueOf(all).Pointer() {
				for l, n := range perLevel {
					if n > 2 && l < maxBlockLevel {
						t.Fatalf("[%d,%d): %d blocks at level %d", from, to, n, l)
					}
				}
			}
		}
	}
	// 30 days with every block present: a handful of reads.
	if n := len(blockCover(490_007, 490_007+720, all)); n > 2*maxBlockLevel {
		t.Errorf("30 days took %d blocks", n)
	}
}

func BenchmarkBlockDecode(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 12))
	data := encodeBlock(nil, randomBlock(rng, 0, 10000))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var sites []string
	for b.Loop() {
		r, err := newBlockReader(data, 0, sites)
		if err != nil {
			b.Fatal(err)
		}
		sites = r.sites
		var e blockEntry
		for r.next(&e) {
		}
		if r.err != nil {
			b.Fatal(r.err)
		}
	}
}
