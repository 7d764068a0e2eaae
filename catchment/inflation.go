package catchment

// Path inflation: probes whose anycast RTT exceeds their baseline.

import (
	"cmp"
	"slices"
)

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
// best anycast RTT of any probe in the same group to any site; the group
// [Unknown] has no such baseline. Sorted by
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
	// Probes whose group is unknown (no GeoIP, no declared place) share no
	// region: their best RTT would be a baseline across the whole world
	// (a probe in South America flagged against one in Europe), so they
	// get no region baseline.
	unknown := int32(slices.Index(keys, Unknown))
	baseline := func(i int) (best, string) {
		if unicast != nil {
			if b, ok := unicast[entries[i].Probe]; ok {
				return b, "unicast"
			}
		}
		if ids[i] == unknown {
			return best{}, "region"
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
