package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Rollup blocks make latency reports and historical liveness cost the same
// whatever their time range. A block holds, for one target, one result kind
// and one aligned span of 2^level hours (level 0 = one hour, level
// maxBlockLevel = 1024 hours), one entry per (probe, af, site) with the
// same sums as results_hourly, packed into a single bytea. Spans are
// aligned on multiples of their length counted in hours since the Unix
// epoch, so any hour range is covered by at most two blocks per level
// (blockCover), and a report reads a dozen rows instead of one rollup row
// per probe and hour or day. Level 0 is built from results_hourly; a
// higher block by merging its two halves, once its span has ended.
//
// Encoding (version 1): "ACRB", a version byte, uvarint site count and
// each site as uvarint length + bytes, uvarint entry count, then per entry
// in strictly increasing (probe, af, site) order:
//
//	uvarint probe delta (probes.num minus the previous entry's)
//	uvarint site<<1 | 1 for IPv6
//	uvarint results, uvarint answered
//	if answered > 0: float64 rtt_sum, float32 rtt_min (little endian)
//	uvarint loss_n, and if loss_n > 0: float32 loss_sum
//	varint first_ts - block start (seconds), uvarint last_ts - first_ts
const (
	blockMagic    = "ACRB"
	blockVersion  = 1
	maxBlockLevel = 10
)

// blockEntry is one (probe, af, site) of a block.
type blockEntry struct {
	Num         uint32 // probes.num
	AF          uint8  // 4 or 6
	Site        uint16 // index into the block's sites
	Results     uint32
	Answered    uint32
	RTTSum      float64
	RTTMin      float32 // meaningful only when Answered > 0
	LossSum     float32
	LossN       uint32
	First, Last int64 // unix seconds
}

// block is a decoded rollup block.
type block struct {
	Start   int64 // unix seconds of the span's first hour
	Sites   []string
	Entries []blockEntry
}

var errBlock = errors.New("corrupt rollup block")

// encodeBlock appends b's encoding to dst. Entries must be sorted by
// (Num, AF, Site) without duplicates.
func encodeBlock(dst []byte, b *block) []byte {
	dst = append(dst, blockMagic...)
	dst = append(dst, blockVersion)
	dst = binary.AppendUvarint(dst, uint64(len(b.Sites)))
	for _, s := range b.Sites {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Entries)))
	var prev uint32
	for i := range b.Entries {
		e := &b.Entries[i]
		dst = binary.AppendUvarint(dst, uint64(e.Num-prev))
		prev = e.Num
		v6 := uint64(0)
		if e.AF == 6 {
			v6 = 1
		}
		dst = binary.AppendUvarint(dst, uint64(e.Site)<<1|v6)
		dst = binary.AppendUvarint(dst, uint64(e.Results))
		dst = binary.AppendUvarint(dst, uint64(e.Answered))
		if e.Answered > 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(e.RTTSum))
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(e.RTTMin))
		}
		dst = binary.AppendUvarint(dst, uint64(e.LossN))
		if e.LossN > 0 {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(e.LossSum))
		}
		dst = binary.AppendVarint(dst, e.First-b.Start)
		dst = binary.AppendUvarint(dst, uint64(e.Last-e.First))
	}
	return dst
}

// blockReader decodes a block's entries one at a time without allocating
// per entry. Any malformed input is an error, never a panic.
type blockReader struct {
	data  []byte
	start int64
	sites []string
	n     int // entries left
	prev  uint32
	pAF   uint8
	pSite uint16
	first bool
	err   error
}

// newBlockReader parses data's header; sites are appended to the reused
// slice sites.
func newBlockReader(data []byte, start int64, sites []string) (*blockReader, error) {
	r := &blockReader{data: data, start: start, sites: sites[:0], first: true}
	if len(data) < len(blockMagic)+1 || string(data[:len(blockMagic)]) != blockMagic {
		return nil, fmt.Errorf("%w: bad magic", errBlock)
	}
	if data[len(blockMagic)] != blockVersion {
		return nil, fmt.Errorf("%w: version %d", errBlock, data[len(blockMagic)])
	}
	r.data = data[len(blockMagic)+1:]
	ns, ok := r.uvarint()
	if !ok || ns > 1<<16 || ns > uint64(len(r.data)) {
		return nil, fmt.Errorf("%w: site count", errBlock)
	}
	for range ns {
		l, ok := r.uvarint()
		if !ok || l > uint64(len(r.data)) {
			return nil, fmt.Errorf("%w: site", errBlock)
		}
		r.sites = append(r.sites, string(r.data[:l]))
		r.data = r.data[l:]
	}
	n, ok := r.uvarint()
	// Every entry takes at least 7 bytes: this bounds n by the input.
	if !ok || n > uint64(len(r.data))/7 {
		return nil, fmt.Errorf("%w: entry count", errBlock)
	}
	r.n = int(n)
	return r, nil
}

func (r *blockReader) uvarint() (uint64, bool) {
	v, k := binary.Uvarint(r.data)
	if k <= 0 {
		return 0, false
	}
	r.data = r.data[k:]
	return v, true
}

// uv reads a uvarint at d[i:], returning the index after it or -1; the
// one-byte case (most values) is inlined.
func uv(d []byte, i int) (uint64, int) {
	if i >= 0 && i < len(d) && d[i] < 0x80 {
		return uint64(d[i]), i + 1
	}
	return uvSlow(d, i)
}

func uvSlow(d []byte, i int) (uint64, int) {
	if i < 0 || i > len(d) {
		return 0, -1
	}
	v, k := binary.Uvarint(d[i:])
	if k <= 0 {
		return 0, -1
	}
	return v, i + k
}

// next decodes the next entry into e; it returns false at the end or on
// an error (see r.err).
func (r *blockReader) next(e *blockEntry) bool {
	if r.n == 0 || r.err != nil {
		if r.n == 0 && r.err == nil && len(r.data) != 0 {
			r.err = fmt.Errorf("%w: %d trailing bytes", errBlock, len(r.data))
		}
		return false
	}
	r.n--

	buf, i := r.data, 0
	d, i := uv(buf, i)
	if i < 0 || d > math.MaxUint32 || uint64(r.prev)+d > math.MaxUint32 {
		return r.fail("probe")
	}
	num := r.prev + uint32(d)
	sa, i := uv(buf, i)
	if i < 0 || sa>>1 >= uint64(len(r.sites)) {
		return r.fail("site")
	}
	af, site := uint8(4), uint16(sa>>1)
	if sa&1 == 1 {
		af = 6
	}
	if !r.first && d == 0 && (af < r.pAF || af == r.pAF && site <= r.pSite) {
		return r.fail("order")
	}
	res, i := uv(buf, i)
	if i < 0 {
		return r.fail("counts")
	}
	ans, i := uv(buf, i)
	if i < 0 || res > math.MaxUint32 || ans > res {
		return r.fail("counts")
	}
	*e = blockEntry{Num: num, AF: af, Site: site, Results: uint32(res), Answered: uint32(ans)}
	if ans > 0 {
		if len(buf)-i < 12 {
			return r.fail("rtt")
		}
		e.RTTSum = math.Float64frombits(binary.LittleEndian.Uint64(buf[i:]))
		e.RTTMin = math.Float32frombits(binary.LittleEndian.Uint32(buf[i+8:]))
		i += 12
		if !(e.RTTSum >= 0 && e.RTTSum <= math.MaxFloat64) || !(e.RTTMin >= 0 && e.RTTMin <= math.MaxFloat32) {
			return r.fail("rtt value")
		}
	}
	ln, i := uv(buf, i)
	if i < 0 || ln > res {
		return r.fail("loss")
	}
	e.LossN = uint32(ln)
	if ln > 0 {
		if len(buf)-i < 4 {
			return r.fail("loss")
		}
		e.LossSum = math.Float32frombits(binary.LittleEndian.Uint32(buf[i:]))
		i += 4
		if !(e.LossSum >= 0 && e.LossSum <= math.MaxFloat32) {
			return r.fail("loss value")
		}
	}
	zf, i := uv(buf, i) // zig-zag signed varint
	if i < 0 {
		return r.fail("first")
	}
	f := int64(zf >> 1)
	if zf&1 != 0 {
		f = ^f
	}
	span, i := uv(buf, i)
	if i < 0 || span > 1<<40 || f > 1<<40 || f < -(1<<40) {
		return r.fail("times")
	}
	r.data = buf[i:]
	e.First = r.start + f
	e.Last = e.First + int64(span)
	r.prev, r.pAF, r.pSite, r.first = num, af, site, false
	return true
}

func (r *blockReader) fail(what string) bool {
	r.err = fmt.Errorf("%w: %s", errBlock, what)
	return false
}

// decodeBlock decodes a whole block (tests and block merging).
func decodeBlock(data []byte, start int64) (*block, error) {
	r, err := newBlockReader(data, start, nil)
	if err != nil {
		return nil, err
	}
	b := &block{Start: start, Sites: r.sites, Entries: make([]blockEntry, 0, r.n)}
	var e blockEntry
	for r.next(&e) {
		b.Entries = append(b.Entries, e)
	}
	if r.err != nil {
		return nil, r.err
	}
	return b, nil
}

// mergeBlocks returns the sum of blocks as one block starting at start:
// entries of the same (probe, af, site) add up (min of minima, earliest
// first, latest last).
func mergeBlocks(start int64, blocks ...*block) *block {
	out := &block{Start: start}
	siteIdx := map[string]uint16{}
	type key struct {
		num  uint32
		af   uint8
		site string
	}
	acc := map[key]int{}
	var all []blockEntry
	var names []string
	for _, b := range blocks {
		for _, e := range b.Entries {
			k := key{e.Num, e.AF, b.Sites[e.Site]}
			i, ok := acc[k]
			if !ok {
				acc[k] = len(all)
				all = append(all, e)
				names = append(names, k.site)
				continue
			}
			addEntry(&all[i], &e)
		}
	}
	for _, s := range names {
		if _, ok := siteIdx[s]; !ok {
			siteIdx[s] = 0
		}
	}
	out.Sites = make([]string, 0, len(siteIdx))
	for s := range siteIdx {
		out.Sites = append(out.Sites, s)
	}
	slices.Sort(out.Sites)
	for i, s := range out.Sites {
		siteIdx[s] = uint16(i)
	}
	for i := range all {
		all[i].Site = siteIdx[names[i]]
	}
	slices.SortFunc(all, compareEntries)
	out.Entries = all
	return out
}

func compareEntries(a, b blockEntry) int {
	switch {
	case a.Num != b.Num:
		if a.Num < b.Num {
			return -1
		}
		return 1
	case a.AF != b.AF:
		return int(a.AF) - int(b.AF)
	default:
		return int(a.Site) - int(b.Site)
	}
}

// addEntry adds e's sums into a.
func addEntry(a, e *blockEntry) {
	if e.Answered > 0 && (a.Answered == 0 || e.RTTMin < a.RTTMin) {
		a.RTTMin = e.RTTMin
	}
	a.Results += e.Results
	a.Answered += e.Answered
	a.RTTSum += e.RTTSum
	a.LossSum += e.LossSum
	a.LossN += e.LossN
	a.First = min(a.First, e.First)
	a.Last = max(a.Last, e.Last)
}

// blockRef names one block: its level and first hour (hours since the
// Unix epoch).
type blockRef struct {
	Level int
	Hour  int64
}

// blockCover covers the hours [from, to) with aligned blocks, greedily
// taking at each position the largest block that fits, is aligned there
// and exists (have; level 0 is always taken, since a missing hour block
// only means no results). With every block present it uses at most two
// blocks per level.
func blockCover(from, to int64, have func(level int, hour int64) bool) []blockRef {
	var out []blockRef
	for pos := from; pos < to; {
		level := 0
		for k := maxBlockLevel; k > 0; k-- {
			span := int64(1) << k
			if pos%span == 0 && pos+span <= to && have(k, pos) {
				level = k
				break
			}
		}
		out = append(out, blockRef{level, pos})
		pos += int64(1) << level
	}
	return out
}
