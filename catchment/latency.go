package catchment

// Latency statistics over samples of RTTs.

import (
	"cmp"
	"slices"
)

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
