package catchment

// Percentiles and the sorts behind them: RTTs radix sorted on their bits,
// counting sorts of small ids, rank tables.

import (
	"cmp"
	"math"
	"slices"
)

// Percentile returns the p-th percentile (0..100) of sorted, ascending
// values by linear interpolation between closest ranks: the value at rank
// h = (n-1)·p/100 (0-based), interpolated between the values at floor(h)
// and ceil(h). This is Hyndman & Fan type 7, the default of numpy, R and
// spreadsheet PERCENTILE; the 50th percentile is the usual median. It
// returns NaN for no values.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	h := float64(n-1) * p / 100
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= n {
		return sorted[n-1]
	}
	return sorted[i] + (h-lo)*(sorted[i+1]-sorted[i])
}

// radixMin is the length from which sortRTTs and sortInflated radix
// sort: below it slices.Sort is about as fast (measured on RTTs).
const radixMin = 256

// sortRTTs sorts v ascending, with exactly the result of slices.Sort(v).
// Long slices are radix sorted on their IEEE bits (mapped so that unsigned
// order is numeric order) when they hold no NaN and no negative zero: then
// values that compare equal are identical, so any correct sort gives the
// same slice. scratch is reused between calls and grown as needed.
func sortRTTs(v []float64, scratch *[]uint64) {
	n := len(v)
	if n < radixMin {
		slices.Sort(v)
		return
	}
	if cap(*scratch) < 2*n {
		*scratch = make([]uint64, 2*n)
	}
	keys := (*scratch)[:n]
	for i, f := range v {
		k := math.Float64bits(f)
		if f != f || k == 1<<63 {
			slices.Sort(v)
			return
		}
		if k>>63 != 0 {
			k = ^k // negative: larger magnitudes first
		} else {
			k |= 1 << 63 // positive: after all negatives
		}
		keys[i] = k
	}
	sorted, _ := radixSort(keys, (*scratch)[n:2*n], nil, nil)
	for i, k := range sorted {
		if k>>63 != 0 {
			k &^= 1 << 63
		} else {
			k = ^k
		}
		v[i] = math.Float64frombits(k)
	}
}

// radixSort sorts keys ascending, stably, moving ids (nil or as long as
// keys) along. tmpKeys and tmpIDs (nil with ids) are as long and are
// overwritten; the sorted keys and ids are returned, in keys and ids or in
// the temporaries.
func radixSort(keys, tmpKeys []uint64, ids, tmpIDs []int32) ([]uint64, []int32) {
	var count [8][256]uint32 // per byte of the key, least significant first
	for _, k := range keys {
		count[0][byte(k)]++
		count[1][byte(k>>8)]++
		count[2][byte(k>>16)]++
		count[3][byte(k>>24)]++
		count[4][byte(k>>32)]++
		count[5][byte(k>>40)]++
		count[6][byte(k>>48)]++
		count[7][byte(k>>56)]++
	}
	for d := range count {
		c := &count[d]
		shift := 8 * uint(d)
		if len(keys) == 0 || c[byte(keys[0]>>shift)] == uint32(len(keys)) {
			continue // one value of this byte: the pass would not move anything
		}
		var sum uint32
		for i, m := range c {
			c[i] = sum
			sum += m
		}
		if ids == nil {
			for _, k := range keys {
				p := &c[byte(k>>shift)]
				tmpKeys[*p] = k
				*p++
			}
		} else {
			for i, k := range keys {
				p := &c[byte(k>>shift)]
				tmpKeys[*p], tmpIDs[*p] = k, ids[i]
				*p++
			}
			ids, tmpIDs = tmpIDs, ids
		}
		keys, tmpKeys = tmpKeys, keys
	}
	return keys, ids
}

// splitRTTs returns rtts grouped by group (rtts[i] in group[i], 0 <=
// group[i] < n), each group's sorted ascending exactly as slices.Sort
// sorts them in the order given: group g's are all[start[g]:start[g+1]].
func splitRTTs(rtts []float64, group []int32, n int) (all []float64, start []int) {
	start = make([]int, n+1)
	for _, g := range group {
		start[g+1]++
	}
	for g := range n {
		start[g+1] += start[g]
	}
	next := slices.Clone(start[:n])
	all = make([]float64, len(rtts))
	for i, v := range rtts {
		g := group[i]
		all[next[g]] = v
		next[g]++
	}
	var scratch []uint64
	for g := range n {
		sortRTTs(all[start[g]:start[g+1]], &scratch)
	}
	return all, start
}

// descending maps f to a key whose unsigned order is the reverse of the
// order cmp.Compare gives floats: larger first, NaN last, -0 as 0.
func descending(f float64) uint64 {
	if f != f {
		return math.MaxUint64
	}
	if f == 0 {
		f = 0 // -0 too
	}
	k := math.Float64bits(f)
	if k>>63 != 0 {
		k = ^k
	} else {
		k |= 1 << 63
	}
	// k is ascending and not 0 (the bits of -Inf are); larger first
	return ^k
}

// sequence returns 0, 1, ..., n-1.
func sequence(n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(i)
	}
	return s
}

// countingSort returns cells stably sorted by rank[id[c]] for each cell c,
// with 0 <= rank[i] < len(rank).
func countingSort(cells, id, rank []int32) []int32 {
	start := make([]int, len(rank)+1)
	for _, c := range cells {
		start[rank[id[c]]+1]++
	}
	for r := range rank {
		start[r+1] += start[r]
	}
	out := make([]int32, len(cells))
	for _, c := range cells {
		r := rank[id[c]]
		out[start[r]] = c
		start[r]++
	}
	return out
}

// ranks returns each key's position in sorted order.
func ranks(keys []string) []int32 {
	order := sequence(len(keys))
	slices.SortFunc(order, func(x, y int32) int { return cmp.Compare(keys[x], keys[y]) })
	rank := make([]int32, len(keys))
	for r, id := range order {
		rank[id] = int32(r)
	}
	return rank
}
