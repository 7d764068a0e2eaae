package catchment

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entry is one probe's current catchment for a target, with the probe's
// location: the input to the aggregation functions. It is a plain value so
// the API can build it from whatever its store returns.
type Entry struct {
	Probe      string
	State      State
	Site       string // set when State is StateSite
	Identity   string
	RTT        *float64 // ms; nil when unknown
	ObservedAt time.Time
	Country    string // ISO 3166-1 alpha-2
	Continent  string // two-letter code; derived from Country when empty
	ASN        int64
	Lat, Lon   *float64
}

// GroupBy names an aggregation key.
type GroupBy string

const (
	GroupAll       GroupBy = ""          // one group, key "all"
	GroupCountry   GroupBy = "country"   // ISO country code
	GroupContinent GroupBy = "continent" // continent code (from the entry, else from its country)
	GroupASN       GroupBy = "asn"       // "AS64500"
	GroupRegion    GroupBy = "region"    // Regions[country]
	GroupSite      GroupBy = "site"      // the site (or "?identity" / "unreachable")
)

// Unknown is the group key of entries whose group value is not known
// (no country, no ASN, a country outside the region set).
const Unknown = "unknown"

// Grouping says how to group entries. The zero value groups everything
// into one group "all".
type Grouping struct {
	By GroupBy
	// Regions maps upper-case country codes to region names for
	// GroupRegion; countries not in the map fall into [Unknown].
	Regions map[string]string
}

// Key returns the group key of e.
func (g Grouping) Key(e Entry) string {
	var k string
	switch g.By {
	case GroupAll:
		return "all"
	case GroupCountry:
		k = strings.ToUpper(e.Country)
	case GroupContinent:
		k = strings.ToUpper(e.Continent)
		if k == "" {
			k = ContinentOf(e.Country)
		}
	case GroupASN:
		if e.ASN > 0 {
			k = "AS" + strconv.FormatInt(e.ASN, 10)
		}
	case GroupRegion:
		k = g.Regions[strings.ToUpper(e.Country)]
	case GroupSite:
		k = placeOf(e)
	}
	if k == "" {
		return Unknown
	}
	return k
}

// placeOf is where an entry puts its probe, for grouping and counting: the
// site, "?identity" for an unmapped answer ("?" with no identity), or
// "unreachable".
func placeOf(e Entry) string {
	switch e.State {
	case StateSite:
		return e.Site
	case StateUnreachable:
		return string(StateUnreachable)
	}
	return "?" + e.Identity
}

// SiteShare is one site's part of a group's catchment.
type SiteShare struct {
	Site      string   `json:"site"`
	Probes    int      `json:"probes"`
	Share     float64  `json:"share"`                // Probes / group Probes (all probes, unidentified and unreachable included)
	MedianRTT *float64 `json:"median_rtt,omitempty"` // ms, over the site's probes with an RTT
}

// Group is the catchment of one group of probes.
type Group struct {
	Key          string      `json:"key"`
	Probes       int         `json:"probes"`
	Sites        []SiteShare `json:"sites"`        // most probes first, then by site code
	Unidentified int         `json:"unidentified"` // answered, no rule matched (or no identity)
	Unreachable  int         `json:"unreachable"`
	// Unmapped counts the raw identities behind Unidentified ("" for
	// answers without any identity), so operators can write missing rules.
	Unmapped map[string]int `json:"unmapped,omitempty"`
}

// Aggregate groups entries by g and returns each group's catchment, sorted
// by key. Each entry counts once: an entry is one probe.
func Aggregate(entries []Entry, g Grouping) []Group {
	a := NewAggregator(g)
	a.Grow(len(entries))
	for i := range entries {
		a.Add(&entries[i])
	}
	return a.Groups()
}

// Aggregator computes [Aggregate] over entries added one at a time, and
// the catchment of all of them, without keeping the entries: a caller
// with entries in another shape need not build a slice of them.
type Aggregator struct {
	groups *GroupIndex
	sites  KeyIndex
	acc    []Group // by group id: the counts and Unmapped
	total  Group   // the same over all entries
	cells  []aggCell
	cellOf map[uint64]int32 // group id<<32 | site id -> cell
	// The RTTs of entries at a site, in the order added, with their cell.
	rtts    []float64
	rttCell []int32
}

// aggCell is one (group, site) pair of an Aggregator.
type aggCell struct {
	group, site int32
	n, rtts     int
}

// NewAggregator returns an empty Aggregator grouping by g.
func NewAggregator(g Grouping) *Aggregator {
	return &Aggregator{groups: NewGroupIndex(g), cellOf: map[uint64]int32{}}
}

// Grow makes room for n more entries, for a caller that knows how many
// it will add.
func (a *Aggregator) Grow(n int) {
	a.rtts = slices.Grow(a.rtts, n)
	a.rttCell = slices.Grow(a.rttCell, n)
}

// Add counts e.
func (a *Aggregator) Add(e *Entry) {
	gid := a.groups.ID(e)
	if int(gid) == len(a.acc) {
		a.acc = append(a.acc, Group{})
	}
	g := &a.acc[gid]
	g.Probes++
	a.total.Probes++
	switch e.State {
	case StateSite:
		sid := a.sites.ID(e.Site)
		k := uint64(uint32(gid))<<32 | uint64(uint32(sid))
		c, ok := a.cellOf[k]
		if !ok {
			c = int32(len(a.cells))
			a.cellOf[k] = c
			a.cells = append(a.cells, aggCell{group: gid, site: sid})
		}
		a.cells[c].n++
		if e.RTT != nil {
			a.cells[c].rtts++
			a.rtts = append(a.rtts, *e.RTT)
			a.rttCell = append(a.rttCell, c)
		}
	case StateUnreachable:
		g.Unreachable++
		a.total.Unreachable++
	default:
		g.Unidentified++
		a.total.Unidentified++
		if g.Unmapped == nil {
			g.Unmapped = map[string]int{}
		}
		g.Unmapped[e.Identity]++
		if a.total.Unmapped == nil {
			a.total.Unmapped = map[string]int{}
		}
		a.total.Unmapped[e.Identity]++
	}
}

// Groups returns the catchment of each group, sorted by key: what
// [Aggregate] returns for the entries added.
func (a *Aggregator) Groups() []Group {
	keys := a.groups.Keys()
	medians := a.medians(len(a.cells), func(c int32) int32 { return c })
	// Each group's sites are one piece of shares; cells are bucketed by
	// group with a counting pass.
	start := make([]int32, len(a.acc)+1)
	for _, c := range a.cells {
		start[c.group+1]++
	}
	for g := range a.acc {
		start[g+1] += start[g]
	}
	shares := make([]SiteShare, len(a.cells))
	fill := slices.Clone(start[:len(a.acc)])
	for i, c := range a.cells {
		ss := SiteShare{Site: a.sites.keys[c.site], Probes: c.n, Share: float64(c.n) / float64(a.acc[c.group].Probes)}
		if c.rtts > 0 {
			ss.MedianRTT = &medians[i]
		}
		shares[fill[c.group]] = ss
		fill[c.group]++
	}
	out := make([]Group, len(a.acc))
	for g := range a.acc {
		out[g] = a.acc[g]
		out[g].Key = keys[g]
		out[g].Unmapped = maps.Clone(out[g].Unmapped) // not to change with more entries
		out[g].Sites = sortShares(shares[start[g]:start[g+1]:start[g+1]])
	}
	slices.SortFunc(out, func(x, y Group) int { return cmp.Compare(x.Key, y.Key) })
	return out
}

// Total returns the catchment of all entries added as one group keyed
// "all": what Aggregate with the zero Grouping returns for them, or a
// group of no probes.
func (a *Aggregator) Total() Group {
	sites := make([]aggCell, len(a.sites.keys))
	for _, c := range a.cells {
		s := &sites[c.site]
		s.site = c.site
		s.n += c.n
		s.rtts += c.rtts
	}
	medians := a.medians(len(sites), func(c int32) int32 { return a.cells[c].site })
	shares := make([]SiteShare, len(sites))
	for i, s := range sites {
		shares[i] = SiteShare{Site: a.sites.keys[i], Probes: s.n, Share: float64(s.n) / float64(a.total.Probes)}
		if s.rtts > 0 {
			shares[i].MedianRTT = &medians[i]
		}
	}
	t := a.total
	t.Key = "all"
	t.Sites = sortShares(shares)
	t.Unmapped = maps.Clone(t.Unmapped)
	return t
}

// medians returns the median RTT of each of n buckets, bucketOf telling
// the bucket of an RTT's cell.
func (a *Aggregator) medians(n int, bucketOf func(cell int32) int32) []float64 {
	bucket := make([]int32, len(a.rtts))
	for i, c := range a.rttCell {
		bucket[i] = bucketOf(c)
	}
	all, start := splitRTTs(a.rtts, bucket, n)
	medians := make([]float64, n)
	for b := range n {
		if part := all[start[b]:start[b+1]]; len(part) > 0 {
			medians[b] = Percentile(part, 50)
		}
	}
	return medians
}

// sortShares sorts a group's sites, most probes first, then by site code;
// none is nil.
func sortShares(s []SiteShare) []SiteShare {
	if len(s) == 0 {
		return nil
	}
	slices.SortFunc(s, func(x, y SiteShare) int {
		if c := cmp.Compare(y.Probes, x.Probes); c != 0 {
			return c
		}
		return cmp.Compare(x.Site, y.Site)
	})
	return s
}

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

// LatencyStats summarises the RTTs of a set of probes (or results).
type LatencyStats struct {
	Key    string   `json:"key"`
	Probes int      `json:"probes"`        // all inputs, lost ones included
	Loss   float64  `json:"loss"`          // unreachable / Probes
	Count  int      `json:"count"`         // inputs with an RTT
	Min    *float64 `json:"min,omitempty"` // ms; nil when Count is 0
	P50    *float64 `json:"p50,omitempty"` // see [Percentile] for the method
	P90    *float64 `json:"p90,omitempty"`
	P99    *float64 `json:"p99,omitempty"`
	Max    *float64 `json:"max,omitempty"`
}

// Summarize computes latency statistics of rtts (any order; not modified)
// with lost further inputs that got no answer.
func Summarize(key string, rtts []float64, lost int) LatencyStats {
	s := LatencyStats{Key: key, Probes: len(rtts) + lost, Count: len(rtts)}
	if s.Probes > 0 {
		s.Loss = float64(lost) / float64(s.Probes)
	}
	if len(rtts) == 0 {
		return s
	}
	v := slices.Clone(rtts)
	var scratch []uint64
	sortRTTs(v, &scratch)
	s.setRTTs(v, make([]float64, 5))
	return s
}

// setRTTs sets the RTT statistics from sorted, ascending values (at least
// one), storing the five values in vals[:5] so that many summaries share
// one allocation.
func (s *LatencyStats) setRTTs(sorted, vals []float64) {
	vals = vals[:5]
	vals[0], vals[1] = sorted[0], sorted[len(sorted)-1]
	vals[2], vals[3], vals[4] = Percentile(sorted, 50), Percentile(sorted, 90), Percentile(sorted, 99)
	s.Min, s.Max, s.P50, s.P90, s.P99 = &vals[0], &vals[1], &vals[2], &vals[3], &vals[4]
}

// Latency groups entries by key and summarises each group's RTTs, sorted by
// key. Unreachable entries count as lost; answered entries without an RTT
// count as probes but contribute no RTT. Use [Grouping.Key] for
// region/ASN keys, or [BySite] for per-site statistics; with many entries
// per key, [LatencyByID] with a [GroupIndex] builds fewer key strings.
func Latency(entries []Entry, key func(Entry) string) []LatencyStats {
	var keys KeyIndex
	ids := make([]int32, len(entries))
	samples := make([]Sample, len(entries))
	for i, e := range entries {
		ids[i] = keys.ID(key(e))
		samples[i] = e.Sample()
	}
	return LatencyByID(samples, ids, keys.keys)
}

// Sample is what latency statistics use of one input (a probe, or a
// probe's results towards one site). It holds no pointers, so large
// slices of samples are cheap to allocate and for the GC.
type Sample struct {
	RTT    float64 // ms, when HasRTT
	HasRTT bool
	// Lost is set for an input without any answer: it counts as lost
	// whatever its RTT.
	Lost bool
}

// Sample returns e's input to latency statistics: unreachable entries are
// lost, answered ones have their RTT if known.
func (e *Entry) Sample() Sample {
	s := Sample{Lost: e.State == StateUnreachable}
	if e.RTT != nil {
		s.RTT, s.HasRTT = *e.RTT, true
	}
	return s
}

// LatencyByID is [Latency] with the inputs reduced to samples and the
// groups given: samples[i] belongs to group ids[i] (0 <= ids[i] <
// len(keys)), whose key is keys[ids[i]]. Keys must be distinct; groups
// without samples are left out.
func LatencyByID(samples []Sample, ids []int32, keys []string) []LatencyStats {
	return KeyedLatency(LatencyPerID(samples, ids, len(keys)), keys)
}

// KeyedLatency turns per-id statistics (from [LatencyPerID]) into those
// of [LatencyByID]: the groups with inputs, keyed by keys (distinct) and
// sorted by key.
func KeyedLatency(perID []LatencyStats, keys []string) []LatencyStats {
	order := make([]int32, 0, len(perID))
	for i := range perID {
		if perID[i].Probes > 0 {
			order = append(order, int32(i))
		}
	}
	slices.SortFunc(order, func(x, y int32) int { return cmp.Compare(keys[x], keys[y]) })
	out := make([]LatencyStats, len(order))
	for i, id := range order {
		out[i] = perID[id]
		out[i].Key = keys[id]
	}
	return out
}

// LatencyPerID is [LatencyByID] in id order and without keys: element id
// summarises the samples i with ids[i] == id (0 <= id < n); Probes is 0
// for an id without samples. For callers that order groups themselves.
func LatencyPerID(samples []Sample, ids []int32, n int) []LatencyStats {
	stats := make([]LatencyStats, n)
	withRTT, nRTT := 0, 0
	for i := range samples {
		s := &stats[ids[i]]
		s.Probes++
		switch in := &samples[i]; {
		case in.Lost:
			s.Loss++ // the lost count until the end
		case in.HasRTT:
			if s.Count == 0 {
				withRTT++
			}
			s.Count++
			nRTT++
		}
	}
	rtts := make([]float64, 0, nRTT)
	group := make([]int32, 0, nRTT)
	for i := range samples {
		if in := &samples[i]; !in.Lost && in.HasRTT {
			rtts, group = append(rtts, in.RTT), append(group, ids[i])
		}
	}
	all, start := splitRTTs(rtts, group, n)
	vals := make([]float64, 5*withRTT)
	for id := range stats {
		s := &stats[id]
		if s.Probes == 0 {
			continue
		}
		s.Loss /= float64(s.Probes)
		if s.Count > 0 {
			s.setRTTs(all[start[id]:start[id+1]], vals)
			vals = vals[5:]
		}
	}
	return stats
}

// BySite is a key function for [Latency]: the entry's site, "?identity"
// for an unmapped answer, or "unreachable". Unreachable entries therefore
// form their own group (with Loss 1), since they say nothing about a site.
func BySite(e Entry) string { return placeOf(e) }

// Inflation defaults.
const (
	DefaultInflationMinExtraMS = 10
	DefaultInflationMinRatio   = 1.5
)

// UnicastRTT is one probe's measured RTT to one site's unicast address.
type UnicastRTT struct {
	Probe string
	Site  string
	RTT   float64 // ms
}

// InflationOptions configures [Inflation]. The zero value uses the
// defaults and groups by continent.
type InflationOptions struct {
	// Grouping defines "the same region"; zero By means GroupContinent
	// (GroupAll is therefore not selectable here: use a single-entry
	// Regions map instead).
	Grouping Grouping
	// MinExtraMS: a probe is inflated only when its RTT exceeds the
	// baseline by more than this many ms; 0 means 10.
	MinExtraMS float64
	// MinRatio: and only when RTT/baseline is more than this; 0 means 1.5.
	MinRatio float64
	// Unicast holds RTTs to sites' unicast addresses; when a probe has any,
	// its baseline is the lowest of them instead of its region's best.
	Unicast []UnicastRTT
}

// Inflated is one probe whose anycast RTT is inflated.
type Inflated struct {
	Probe          string  `json:"probe"`
	Group          string  `json:"group"`
	Site           string  `json:"site"`
	RTT            float64 `json:"rtt"`
	Baseline       float64 `json:"baseline"`
	BaselineSource string  `json:"baseline_source"` // "unicast" or "region"
	BaselineSite   string  `json:"baseline_site"`   // the site of the baseline RTT
	BaselineProbe  string  `json:"baseline_probe,omitempty"`
	ExtraMS        float64 `json:"extra_ms"`
	Ratio          float64 `json:"ratio"`
}

// Inflation lists probes (with a site and an RTT) whose anycast RTT exceeds
// their baseline by both MinExtraMS and MinRatio. The baseline is the
// probe's best RTT to any site's unicast address when measured, else the
// best anycast RTT of any probe in the same group to any site. Sorted by
// extra ms, largest first, then probe.
func Inflation(entries []Entry, opt InflationOptions) []Inflated {
	g := opt.Grouping
	if g.By == GroupAll {
		g.By = GroupContinent
	}
	idx := NewGroupIndex(g)
	ids := make([]int32, len(entries))
	for i := range entries {
		if e := &entries[i]; e.State == StateSite && e.RTT != nil {
			ids[i] = idx.ID(e)
		}
	}
	return InflationByID(entries, ids, idx.Keys(), opt)
}

// InflationByID is [Inflation] with the groups given as for
// [LatencyByID] (ids of entries without a site or an RTT are not read);
// opt.Grouping is not used.
func InflationByID(entries []Entry, ids []int32, keys []string, opt InflationOptions) []Inflated {
	if opt.MinExtraMS == 0 {
		opt.MinExtraMS = DefaultInflationMinExtraMS
	}
	if opt.MinRatio == 0 {
		opt.MinRatio = DefaultInflationMinRatio
	}
	type best struct {
		rtt         float64
		site, probe string
		ok          bool
	}
	var unicast map[string]best
	if len(opt.Unicast) > 0 {
		unicast = map[string]best{}
		for _, u := range opt.Unicast {
			if b, ok := unicast[u.Probe]; !ok || u.RTT < b.rtt {
				unicast[u.Probe] = best{u.RTT, u.Site, "", true}
			}
		}
	}
	region := make([]best, len(keys))
	measured := 0
	for i := range entries {
		e := &entries[i]
		if e.State != StateSite || e.RTT == nil {
			continue
		}
		measured++
		if b := &region[ids[i]]; !b.ok || *e.RTT < b.rtt {
			*b = best{*e.RTT, e.Site, e.Probe, true}
		}
	}
	baseline := func(i int) (best, string) {
		if unicast != nil {
			if b, ok := unicast[entries[i].Probe]; ok {
				return b, "unicast"
			}
		}
		return region[ids[i]], "region"
	}
	found := make([]inflated, 0, measured)
	for i := range entries {
		e := &entries[i]
		if e.State != StateSite || e.RTT == nil {
			continue
		}
		b, _ := baseline(i)
		extra := *e.RTT - b.rtt
		if b.rtt <= 0 || extra <= opt.MinExtraMS || *e.RTT/b.rtt <= opt.MinRatio {
			continue
		}
		found = append(found, inflated{descending(extra), e.Probe, i})
	}
	if len(found) == 0 {
		return nil
	}
	out := make([]Inflated, len(found))
	for k, j := range sortInflated(found) {
		f := &found[j]
		e := &entries[f.i]
		b, src := baseline(f.i)
		out[k] = Inflated{Probe: e.Probe, Group: keys[ids[f.i]], Site: e.Site, RTT: *e.RTT,
			Baseline: b.rtt, BaselineSource: src, BaselineSite: b.site, BaselineProbe: b.probe,
			ExtraMS: *e.RTT - b.rtt, Ratio: *e.RTT / b.rtt}
	}
	return out
}

// inflated is an inflated entry as sortInflated orders them.
type inflated struct {
	order uint64 // extra ms, largest first: see descending
	probe string
	i     int // the entry
}

// sortInflated returns the order of found by extra ms (largest first),
// then probe: the indexes of found, sorted. found is not modified.
//
// The result is exactly that of sorting the Inflated values themselves
// with slices.SortFunc, ties included: without two elements equal in
// both, the order is unique and long lists are radix sorted by extra
// then sorted by probe within equal extras; with such a tie (the same
// probe twice, with the same RTT), found is sorted as the Inflated values
// would be, with the same comparisons from the same starting order, which
// the (unstable) sort answers with the same permutation.
func sortInflated(found []inflated) []int32 {
	n := len(found)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	if n >= radixMin {
		keys := make([]uint64, 2*n)
		tmpIDs := make([]int32, n)
		for i := range found {
			keys[i] = found[i].order
		}
		keys, order = radixSort(keys[:n], keys[n:], order, tmpIDs)
		tie := false
		for lo := 0; lo < n; {
			hi := lo + 1
			for hi < n && keys[hi] == keys[lo] {
				hi++
			}
			if hi-lo > 1 {
				run := order[lo:hi]
				slices.SortFunc(run, func(x, y int32) int { return cmp.Compare(found[x].probe, found[y].probe) })
				for k := 1; k < len(run); k++ {
					tie = tie || found[run[k]].probe == found[run[k-1]].probe
				}
			}
			lo = hi
		}
		if !tie {
			return order
		}
		for i := range order {
			order[i] = int32(i)
		}
	}
	slices.SortFunc(order, func(x, y int32) int {
		if c := cmp.Compare(found[x].order, found[y].order); c != 0 {
			return c
		}
		return cmp.Compare(found[x].probe, found[y].probe)
	})
	return order
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

// GroupIndex numbers the groups of entries under a [Grouping]: ID gives
// entries with the same key the same small id, counting from 0, and
// Keys()[id] is the key. Each distinct input of the key (country,
// continent, ASN, place) is turned into a key once, so indexing many
// entries builds few strings. The Grouping's Regions must not change while
// the index is in use.
type GroupIndex struct {
	g    Grouping
	keys KeyIndex
	// What the key was computed from, by grouping: the country (country,
	// region, continent when the entry has none), the continent, the ASN,
	// the site or identity (site).
	byCountry, byContinent, bySite, byIdentity map[string]int32
	byASN                                      map[int64]int32
	fixed                                      int32 // the one id of groupings with a constant key (or of unreachable places); -1 until seen
}

// NewGroupIndex returns an empty index for g.
func NewGroupIndex(g Grouping) *GroupIndex {
	return &GroupIndex{g: g, byCountry: map[string]int32{}, byContinent: map[string]int32{}, bySite: map[string]int32{},
		byIdentity: map[string]int32{}, byASN: map[int64]int32{}, fixed: -1}
}

// ID returns the id of e's group: the id of g.Key(e).
func (x *GroupIndex) ID(e *Entry) int32 {
	switch x.g.By {
	case GroupCountry, GroupRegion:
		return x.cached(x.byCountry, e.Country, e)
	case GroupContinent:
		// A non-empty continent upper-cases to a non-empty key: the
		// country is only read without one.
		if e.Continent != "" {
			return x.cached(x.byContinent, e.Continent, e)
		}
		return x.cached(x.byCountry, e.Country, e)
	case GroupASN:
		id, ok := x.byASN[e.ASN]
		if !ok {
			id = x.keys.ID(x.g.Key(*e))
			x.byASN[e.ASN] = id
		}
		return id
	case GroupSite:
		switch e.State {
		case StateSite:
			return x.cached(x.bySite, e.Site, e)
		case StateUnreachable:
		default:
			return x.cached(x.byIdentity, e.Identity, e)
		}
	}
	// GroupAll, an unknown grouping (Unknown) and unreachable places: a
	// key that depends on nothing else.
	if x.fixed < 0 {
		x.fixed = x.keys.ID(x.g.Key(*e))
	}
	return x.fixed
}

// cached returns the id of e's key, computed from in unless m has it.
func (x *GroupIndex) cached(m map[string]int32, in string, e *Entry) int32 {
	id, ok := m[in]
	if !ok {
		id = x.keys.ID(x.g.Key(*e))
		m[in] = id
	}
	return id
}

// Keys returns the keys by id. The slice is the index's own: do not
// modify it.
func (x *GroupIndex) Keys() []string { return x.keys.keys }

// KeyIndex numbers distinct keys in order of first sight, for
// [LatencyByID]. The zero value is an empty index.
type KeyIndex struct {
	ids  map[string]int32
	keys []string
}

// ID returns k's id, numbering it if it is new.
func (x *KeyIndex) ID(k string) int32 {
	id, ok := x.ids[k]
	if !ok {
		if x.ids == nil {
			x.ids = map[string]int32{}
		}
		id = int32(len(x.keys))
		x.ids[k] = id
		x.keys = append(x.keys, k)
	}
	return id
}

// Keys returns the keys by id. The slice is the index's own: do not
// modify it.
func (x *KeyIndex) Keys() []string { return x.keys }
