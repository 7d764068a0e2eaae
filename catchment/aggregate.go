package catchment

// Catchment aggregation: per group of probes, the share of each site.

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

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

// Track is one (probe, address family) track's catchment state with its
// probe's metadata, as the store returns it for a catchment report.
type Track struct {
	Probe      string
	AF         int
	State      State
	Site       string
	Identity   string
	Source     string // evidence that named Site ("hostname_bind", "trace_hop", …); "" for history
	RTT        *float64
	ObservedAt time.Time
	Since      time.Time
	Lat, Lon   *float64 // unblurred
	Country    string
	Continent  string
	ASN        *int64
}

// Entry returns t as an aggregation entry (without its position).
func (t *Track) Entry() Entry {
	e := Entry{Probe: t.Probe, State: t.State, Site: t.Site, Identity: t.Identity, RTT: t.RTT,
		ObservedAt: t.ObservedAt, Country: t.Country, Continent: t.Continent}
	if t.ASN != nil {
		e.ASN = *t.ASN
	}
	return e
}

// AggregateTracks returns the catchment of all tracks (as [Aggregator.Total])
// and per group of g (as [Aggregator.Groups]): a dual-stack probe counts
// once per family.
func AggregateTracks(tracks []Track, g Grouping) (total Group, groups []Group) {
	agg := NewAggregator(g)
	agg.Grow(len(tracks))
	for i := range tracks {
		e := tracks[i].Entry()
		agg.Add(&e)
	}
	groups = agg.Groups()
	return agg.Total(), groups
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
