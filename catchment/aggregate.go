package catchment

import (
	"cmp"
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
	type acc struct {
		g     Group
		sites map[string]*siteAcc
	}
	groups := map[string]*acc{}
	for _, e := range entries {
		k := g.Key(e)
		a := groups[k]
		if a == nil {
			a = &acc{g: Group{Key: k}, sites: map[string]*siteAcc{}}
			groups[k] = a
		}
		a.g.Probes++
		switch e.State {
		case StateSite:
			s := a.sites[e.Site]
			if s == nil {
				s = &siteAcc{}
				a.sites[e.Site] = s
			}
			s.n++
			if e.RTT != nil {
				s.rtts = append(s.rtts, *e.RTT)
			}
		case StateUnreachable:
			a.g.Unreachable++
		default:
			a.g.Unidentified++
			if a.g.Unmapped == nil {
				a.g.Unmapped = map[string]int{}
			}
			a.g.Unmapped[e.Identity]++
		}
	}
	out := make([]Group, 0, len(groups))
	for _, a := range groups {
		for site, s := range a.sites {
			ss := SiteShare{Site: site, Probes: s.n, Share: float64(s.n) / float64(a.g.Probes)}
			if len(s.rtts) > 0 {
				slices.Sort(s.rtts)
				m := Percentile(s.rtts, 50)
				ss.MedianRTT = &m
			}
			a.g.Sites = append(a.g.Sites, ss)
		}
		slices.SortFunc(a.g.Sites, func(x, y SiteShare) int {
			if c := cmp.Compare(y.Probes, x.Probes); c != 0 {
				return c
			}
			return cmp.Compare(x.Site, y.Site)
		})
		out = append(out, a.g)
	}
	slices.SortFunc(out, func(x, y Group) int { return cmp.Compare(x.Key, y.Key) })
	return out
}

type siteAcc struct {
	n    int
	rtts []float64
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
	slices.Sort(v)
	f := func(x float64) *float64 { return &x }
	s.Min, s.Max = f(v[0]), f(v[len(v)-1])
	s.P50, s.P90, s.P99 = f(Percentile(v, 50)), f(Percentile(v, 90)), f(Percentile(v, 99))
	return s
}

// Latency groups entries by key and summarises each group's RTTs, sorted by
// key. Unreachable entries count as lost; answered entries without an RTT
// count as probes but contribute no RTT. Use [Grouping.Key] for
// region/ASN keys, or [BySite] for per-site statistics.
func Latency(entries []Entry, key func(Entry) string) []LatencyStats {
	type acc struct {
		rtts []float64
		lost int
	}
	groups := map[string]*acc{}
	var noRTT = map[string]int{}
	for _, e := range entries {
		k := key(e)
		a := groups[k]
		if a == nil {
			a = &acc{}
			groups[k] = a
		}
		switch {
		case e.State == StateUnreachable:
			a.lost++
		case e.RTT != nil:
			a.rtts = append(a.rtts, *e.RTT)
		default:
			noRTT[k]++
		}
	}
	out := make([]LatencyStats, 0, len(groups))
	for k, a := range groups {
		s := Summarize(k, a.rtts, a.lost)
		s.Probes += noRTT[k]
		if s.Probes > 0 {
			s.Loss = float64(a.lost) / float64(s.Probes)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y LatencyStats) int { return cmp.Compare(x.Key, y.Key) })
	return out
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
	if opt.Grouping.By == GroupAll {
		opt.Grouping.By = GroupContinent
	}
	if opt.MinExtraMS == 0 {
		opt.MinExtraMS = DefaultInflationMinExtraMS
	}
	if opt.MinRatio == 0 {
		opt.MinRatio = DefaultInflationMinRatio
	}
	type best struct {
		rtt         float64
		site, probe string
	}
	unicast := map[string]best{}
	for _, u := range opt.Unicast {
		if b, ok := unicast[u.Probe]; !ok || u.RTT < b.rtt {
			unicast[u.Probe] = best{u.RTT, u.Site, ""}
		}
	}
	region := map[string]best{}
	for _, e := range entries {
		if e.State != StateSite || e.RTT == nil {
			continue
		}
		k := opt.Grouping.Key(e)
		if b, ok := region[k]; !ok || *e.RTT < b.rtt {
			region[k] = best{*e.RTT, e.Site, e.Probe}
		}
	}
	var out []Inflated
	for _, e := range entries {
		if e.State != StateSite || e.RTT == nil {
			continue
		}
		k := opt.Grouping.Key(e)
		b, src := unicast[e.Probe], "unicast"
		if _, ok := unicast[e.Probe]; !ok {
			b, src = region[k], "region"
		}
		extra := *e.RTT - b.rtt
		if b.rtt <= 0 || extra <= opt.MinExtraMS || *e.RTT/b.rtt <= opt.MinRatio {
			continue
		}
		out = append(out, Inflated{Probe: e.Probe, Group: k, Site: e.Site, RTT: *e.RTT,
			Baseline: b.rtt, BaselineSource: src, BaselineSite: b.site, BaselineProbe: b.probe,
			ExtraMS: extra, Ratio: *e.RTT / b.rtt})
	}
	slices.SortFunc(out, func(x, y Inflated) int {
		if c := cmp.Compare(y.ExtraMS, x.ExtraMS); c != 0 {
			return c
		}
		return cmp.Compare(x.Probe, y.Probe)
	})
	return out
}
