package catchment

// The group × site matrix of a latency report.

import (
	"cmp"
	"slices"
	"strings"
)

// GroupSiteLatency is one cell of a latency report's group × site matrix.
// Site is a site code, "?identity" for unmapped answers or "unreachable".
type GroupSiteLatency struct {
	Group  string   `json:"group"`
	Site   string   `json:"site"`
	Probes int      `json:"probes"`
	Count  int      `json:"count"`
	Loss   float64  `json:"loss"`
	Min    *float64 `json:"min,omitempty"`
	P50    *float64 `json:"p50,omitempty"`
	P90    *float64 `json:"p90,omitempty"`
	P99    *float64 `json:"p99,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	// InflatedProbes counts the cell's probes listed in inflated.
	InflatedProbes int `json:"inflated_probes"`
	// Inflated flags a cell whose p50 exceeds the best site p50 of its
	// group by both inflation thresholds: the group would do better at
	// another site.
	Inflated bool `json:"inflated"`
}

// siteCells are the cells of a latency report's group × site matrix: per
// (probe, site) input its cell, and per cell its group and site as
// published, in published order (by group, then site).
//
// A cell is what the key group "\x00" place names: cells are ordered by
// that key and it is split at its first NUL. Without a NUL in any group or
// place key, that is ordering and splitting (group, place), which is done
// directly; otherwise with the keys built.
type siteCells struct {
	ids           []int32 // per input
	group, site   []int32 // per cell: indexes into groups and sites
	groups, sites []string
	order         []int32 // cells, ordered
}

// newSiteCells numbers the cells of inputs in group groupKeys[groups[i]]
// and at place placeKeys[places[i]] (its [BySite] key); both key
// lists are distinct.
func newSiteCells(groups []int32, groupKeys []string, places []int32, placeKeys []string) *siteCells {
	if slices.ContainsFunc(groupKeys, hasNUL) || slices.ContainsFunc(placeKeys, hasNUL) {
		return siteCellsByKey(groups, groupKeys, places, placeKeys)
	}
	c := &siteCells{ids: make([]int32, len(groups)), groups: groupKeys, sites: placeKeys}
	cellOf := map[uint64]int32{}
	for i := range groups {
		id, ok := cellOf[pairKey(groups[i], places[i])]
		if !ok {
			id = int32(len(c.group))
			cellOf[pairKey(groups[i], places[i])] = id
			c.group, c.site = append(c.group, groups[i]), append(c.site, places[i])
		}
		c.ids[i] = id
	}
	// by place key, then (stably) by group key
	c.order = countingSort(countingSort(sequence(len(c.group)), c.site, ranks(placeKeys)), c.group, ranks(groupKeys))
	return c
}

// siteCellsByKey is newSiteCells building the key of each cell.
func siteCellsByKey(groups []int32, groupKeys []string, places []int32, placeKeys []string) *siteCells {
	c := &siteCells{ids: make([]int32, len(groups))}
	var keys, groupNames, siteNames KeyIndex
	cellOf := map[uint64]int32{}
	for i := range groups {
		id, ok := cellOf[pairKey(groups[i], places[i])]
		if !ok {
			key := groupKeys[groups[i]] + "\x00" + placeKeys[places[i]]
			id = keys.ID(key)
			if int(id) == len(c.group) { // not the key of another pair
				group, site, _ := strings.Cut(key, "\x00")
				c.group, c.site = append(c.group, groupNames.ID(group)), append(c.site, siteNames.ID(site))
			}
			cellOf[pairKey(groups[i], places[i])] = id
		}
		c.ids[i] = id
	}
	c.groups, c.sites = groupNames.Keys(), siteNames.Keys()
	c.order = sequence(len(c.group))
	slices.SortFunc(c.order, func(x, y int32) int { return cmp.Compare(keys.Keys()[x], keys.Keys()[y]) })
	return c
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// groupSiteMatrix publishes the cells with their statistics (by cell),
// with inflation flags from opt's thresholds and the per-probe inflated
// list.
func groupSiteMatrix(cells *siteCells, stats []LatencyStats, opt InflationOptions, inflated []Inflated) []GroupSiteLatency {
	// inflated lists probes by group and site name
	groupOf, siteOf := make(map[string]int32, len(cells.groups)), make(map[string]int32, len(cells.sites))
	for id, k := range cells.groups {
		groupOf[k] = int32(id)
	}
	for id, k := range cells.sites {
		siteOf[k] = int32(id)
	}
	cellOf := make(map[uint64]int32, len(cells.group))
	for c := range cells.group {
		cellOf[pairKey(cells.group[c], cells.site[c])] = int32(c)
	}
	nInflated := make([]int, len(cells.group))
	for i := range inflated {
		g, ok := groupOf[inflated[i].Group]
		s, ok2 := siteOf[inflated[i].Site]
		if ok && ok2 {
			if c, ok := cellOf[pairKey(g, s)]; ok {
				nInflated[c]++
			}
		}
	}
	out := make([]GroupSiteLatency, len(cells.order))
	best := make([]float64, len(cells.groups)) // a group's best site p50
	seen := make([]bool, len(cells.groups))
	for k, c := range cells.order {
		st := &stats[c]
		out[k] = GroupSiteLatency{Group: cells.groups[cells.group[c]], Site: cells.sites[cells.site[c]], Probes: st.Probes, Count: st.Count,
			Loss: st.Loss, Min: st.Min, P50: st.P50, P90: st.P90, P99: st.P99, Max: st.Max, InflatedProbes: nInflated[c]}
		if p50 := st.P50; p50 != nil && placeAnswers(out[k].Site) {
			if g := cells.group[c]; !seen[g] || *p50 < best[g] {
				best[g], seen[g] = *p50, true
			}
		}
	}
	extra, ratio := opt.MinExtraMS, opt.MinRatio
	if extra == 0 {
		extra = DefaultInflationMinExtraMS
	}
	if ratio == 0 {
		ratio = DefaultInflationMinRatio
	}
	for k, c := range cells.order {
		cell := &out[k]
		g := cells.group[c]
		// "unknown" is no region: comparing sites across it would compare
		// probes from anywhere in the world.
		if !seen[g] || cell.P50 == nil || best[g] <= 0 || !placeAnswers(cell.Site) || cells.groups[g] == Unknown {
			continue
		}
		cell.Inflated = *cell.P50-best[g] > extra && *cell.P50/best[g] > ratio
	}
	return out
}

// placeAnswers tells a site of the matrix from "unreachable" and unmapped
// "?identity" places, which no probe can be moved to.
func placeAnswers(site string) bool { return site != "unreachable" && !strings.HasPrefix(site, "?") }

func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }
