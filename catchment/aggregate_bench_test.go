package catchment

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The reference implementations below are the straightforward versions of
// Aggregate, Latency, Summarize and Inflation (one map of string keys per
// call, one RTT slice per group). The optimized functions must give
// exactly the same results, order of ties included; the tests compare the
// two on random inputs.

func refAggregate(entries []Entry, g Grouping) []Group {
	type acc struct {
		g     Group
		sites map[string]*refSiteAcc
	}
	groups := map[string]*acc{}
	for _, e := range entries {
		k := g.Key(e)
		a := groups[k]
		if a == nil {
			a = &acc{g: Group{Key: k}, sites: map[string]*refSiteAcc{}}
			groups[k] = a
		}
		a.g.Probes++
		switch e.State {
		case StateSite:
			s := a.sites[e.Site]
			if s == nil {
				s = &refSiteAcc{}
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

type refSiteAcc struct {
	n    int
	rtts []float64
}

func refSummarize(key string, rtts []float64, lost int) LatencyStats {
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

func refLatency(entries []Entry, key func(Entry) string) []LatencyStats {
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
		s := refSummarize(k, a.rtts, a.lost)
		s.Probes += noRTT[k]
		if s.Probes > 0 {
			s.Loss = float64(a.lost) / float64(s.Probes)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y LatencyStats) int { return cmp.Compare(x.Key, y.Key) })
	return out
}

func refInflation(entries []Entry, opt InflationOptions) []Inflated {
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
			if k == Unknown { // no region: no baseline across the world
				b = best{}
			}
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

// genOptions shapes a synthetic set of entries.
type genOptions struct {
	probes       int
	countries    int     // distinct countries (some lower-case, one empty, one unknown to the continent table)
	asns         int     // distinct ASNs
	sites        int     // distinct sites
	unreachable  float64 // fraction of entries
	unidentified float64
	noRTT        float64 // fraction of answered entries without an RTT
	dup          float64 // fraction of probes appearing twice (a second address family)
	special      bool    // NaN, infinite, negative, zero and repeated RTTs
}

var benchSites = []string{"ams", "fra", "lhr", "iad", "lax", "nrt", "syd", "gru", "jnb", "sin", "", "mad"}

var benchCountries = []string{"NL", "DE", "US", "BR", "JP", "AU", "ZA", "IN", "FR", "GB", "SG", "CA", "AR", "KE", "nl", "", "XX", "se", "RU", "MX"}

// genEntries returns realistic entries: RTTs of 5-300 ms with a fixed
// per-country floor, so that many probes are inflated.
func genEntries(r *rand.Rand, o genOptions) []Entry {
	at := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	out := make([]Entry, 0, o.probes+o.probes/8)
	for i := range o.probes {
		cc := benchCountries[r.IntN(min(o.countries, len(benchCountries)))]
		e := Entry{Probe: "p-" + strconv.Itoa(100000+r.IntN(10*o.probes)), Country: cc, ObservedAt: at.Add(time.Duration(i) * time.Second)}
		if r.IntN(4) == 0 {
			e.Continent = ContinentOf(cc)
			if r.IntN(10) == 0 {
				e.Continent = strings.ToLower(e.Continent)
			}
		}
		if r.IntN(50) != 0 {
			e.ASN = int64(64500 + r.IntN(o.asns))
		}
		switch u := r.Float64(); {
		case u < o.unreachable:
			e.State = StateUnreachable
		case u < o.unreachable+o.unidentified:
			e.State = StateUnidentified
			e.Identity = []string{"", "weird", "host\"1", "ünï"}[r.IntN(4)]
		default:
			e.State = StateSite
			e.Site = benchSites[r.IntN(min(o.sites, len(benchSites)))]
		}
		if e.State != StateUnreachable && r.Float64() >= o.noRTT {
			floor := 5 + float64(len(cc))*3
			v := floor + 295*r.Float64()*r.Float64()
			if o.special {
				switch r.IntN(40) {
				case 0:
					v = math.NaN()
				case 1:
					v = math.Inf(1)
				case 2:
					v = 0
				case 3:
					v = -1
				case 8:
					v = math.Copysign(0, -1)
				case 4, 5, 6, 7:
					v = float64(r.IntN(5)) + 20
				}
			}
			e.RTT = &v
		}
		out = append(out, e)
		if r.Float64() < o.dup {
			// A second address family: another RTT, or the same one at
			// another site (a tie in every order but the site's).
			d := e
			if d.RTT != nil && r.IntN(2) == 0 {
				v := *d.RTT * (1 + r.Float64())
				d.RTT = &v
			} else if d.State == StateSite {
				d.Site = benchSites[r.IntN(min(o.sites, len(benchSites)))]
			}
			out = append(out, d)
		}
	}
	return out
}

var benchGen = genOptions{probes: 10000, countries: 16, asns: 800, sites: 8, unreachable: 0.03, unidentified: 0.03, noRTT: 0.01}

var benchRegions = map[string]string{"NL": "west", "DE": "west", "FR": "west", "GB": "west", "US": "americas", "BR": "americas",
	"CA": "americas", "AR": "americas", "JP": "asia\x00pacific", "AU": "asia\x00pacific", "IN": "unknown", "SG": "ä \"asia\""}

func benchGroupings() []Grouping {
	return []Grouping{{}, {By: GroupCountry}, {By: GroupContinent}, {By: GroupASN}, {By: GroupRegion, Regions: benchRegions},
		{By: GroupSite}, {By: "planet"}}
}

func genCases() map[string][]Entry {
	cases := map[string][]Entry{"empty": nil}
	for i, o := range []genOptions{
		{probes: 50, countries: 5, asns: 4, sites: 3, unreachable: 0.1, unidentified: 0.1, noRTT: 0.1, dup: 0.1},
		{probes: 500, countries: 20, asns: 30, sites: 12, unreachable: 0.05, unidentified: 0.05, noRTT: 0.05, dup: 0.2, special: true},
		{probes: 300, countries: 3, asns: 2, sites: 2, dup: 0.5, special: true},
		{probes: 40, countries: 20, asns: 20, sites: 8, unreachable: 1},
		{probes: 40, countries: 20, asns: 20, sites: 8, unidentified: 1},
		{probes: 40, countries: 20, asns: 20, sites: 8, noRTT: 1},
		{probes: 2000, countries: 16, asns: 800, sites: 8, unreachable: 0.03, unidentified: 0.03, noRTT: 0.01, dup: 0.1},
		{probes: 3000, countries: 3, asns: 5, sites: 2, unreachable: 0.03, unidentified: 0.03, noRTT: 0.01, dup: 0.1, special: true},
		{probes: 3000, countries: 3, asns: 5, sites: 4, unreachable: 0.03, unidentified: 0.03, noRTT: 0.01, special: true},
		{probes: 3000, countries: 16, asns: 800, sites: 8, unreachable: 0.03, unidentified: 0.03, noRTT: 0.01},
		{probes: 1500, countries: 20, asns: 1500, sites: 12, unreachable: 0.03, unidentified: 0.03, noRTT: 0.01, dup: 0.1}, // sparse cells
	} {
		for seed := range uint64(3) {
			cases[fmt.Sprintf("gen%d/seed%d", i, seed)] = genEntries(rand.New(rand.NewPCG(seed, uint64(i))), o)
		}
	}
	return cases
}

func TestAggregateMatchesReference(t *testing.T) {
	for name, entries := range genCases() {
		for _, g := range benchGroupings() {
			if got, want := dump(Aggregate(entries, g)), dump(refAggregate(entries, g)); got != want {
				t.Errorf("%s by %q: got %s, want %s", name, g.By, got, want)
			}
		}
	}
}

// TestAggregatorTotal checks an Aggregator's total against Aggregate
// with the zero Grouping, whatever it groups by.
func TestAggregatorTotal(t *testing.T) {
	for name, entries := range genCases() {
		want := dump(Group{Key: "all"})
		if all := refAggregate(entries, Grouping{}); len(all) == 1 {
			want = dump(all[0])
		}
		for _, g := range benchGroupings() {
			a := NewAggregator(g)
			for i := range entries {
				a.Add(&entries[i])
			}
			if got := dump(a.Total()); got != want {
				t.Errorf("%s by %q: got %s, want %s", name, g.By, got, want)
			}
			// more entries after a result: the same again
			for i := range entries {
				a.Add(&entries[i])
			}
			twice := append(slices.Clone(entries), entries...)
			if got, want := dump(a.Groups()), dump(refAggregate(twice, g)); got != want {
				t.Errorf("%s by %q: groups after adding more: got %s, want %s", name, g.By, got, want)
			}
		}
	}
}

func TestLatencyMatchesReference(t *testing.T) {
	for name, entries := range genCases() {
		for _, g := range benchGroupings() {
			if got, want := dump(Latency(entries, g.Key)), dump(refLatency(entries, g.Key)); got != want {
				t.Errorf("%s by %q: got %s, want %s", name, g.By, got, want)
			}
		}
		if got, want := dump(Latency(entries, BySite)), dump(refLatency(entries, BySite)); got != want {
			t.Errorf("%s by site: got %s, want %s", name, got, want)
		}
		for _, lost := range []int{0, 3} {
			rtts := make([]float64, 0, len(entries))
			for _, e := range entries {
				if e.RTT != nil {
					rtts = append(rtts, *e.RTT)
				}
			}
			before := slices.Clone(rtts)
			got, want := dump(Summarize("k", rtts, lost)), dump(refSummarize("k", rtts, lost))
			if got != want {
				t.Errorf("%s Summarize: got %s, want %s", name, got, want)
			}
			if dump(rtts) != dump(before) {
				t.Errorf("%s: Summarize modified its input", name)
			}
		}
	}
}

func TestInflationMatchesReference(t *testing.T) {
	for name, entries := range genCases() {
		var unicast []UnicastRTT
		for i, e := range entries {
			if i%7 == 0 {
				unicast = append(unicast, UnicastRTT{Probe: e.Probe, Site: "u" + strconv.Itoa(i%3), RTT: float64(i%50) + 0.5})
			}
		}
		for _, g := range benchGroupings() {
			for _, opt := range []InflationOptions{{Grouping: g}, {Grouping: g, MinExtraMS: 1, MinRatio: 1.01}, {Grouping: g, Unicast: unicast}} {
				if got, want := dump(Inflation(entries, opt)), dump(refInflation(entries, opt)); got != want {
					t.Errorf("%s by %q: got %s, want %s", name, g.By, got, want)
				}
			}
		}
	}
}

// dump prints v with pointers followed and floats exactly (NaN == NaN),
// for comparisons and failure messages.
func dump(v any) string {
	var b strings.Builder
	var walk func(rv reflect.Value)
	walk = func(rv reflect.Value) {
		switch rv.Kind() {
		case reflect.Pointer:
			if rv.IsNil() {
				b.WriteString("nil")
				return
			}
			b.WriteByte('&')
			walk(rv.Elem())
		case reflect.Slice:
			if rv.IsNil() {
				b.WriteString("nil")
				return
			}
			b.WriteByte('[')
			for i := range rv.Len() {
				walk(rv.Index(i))
				b.WriteByte(' ')
			}
			b.WriteByte(']')
		case reflect.Struct:
			b.WriteByte('{')
			for i := range rv.NumField() {
				walk(rv.Field(i))
				b.WriteByte(' ')
			}
			b.WriteByte('}')
		case reflect.Float64:
			b.WriteString(strconv.FormatUint(math.Float64bits(rv.Float()), 16))
		default:
			fmt.Fprintf(&b, "%#v", rv.Interface())
		}
	}
	walk(reflect.ValueOf(v))
	return b.String()
}

func BenchmarkAggregate(b *testing.B) {
	entries := genEntries(rand.New(rand.NewPCG(1, 2)), benchGen)
	for _, g := range []Grouping{{}, {By: GroupCountry}, {By: GroupASN}} {
		b.Run("by="+string(cmp.Or(g.By, "all")), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Aggregate(entries, g)
			}
		})
	}
}

func BenchmarkLatency(b *testing.B) {
	entries := genEntries(rand.New(rand.NewPCG(1, 2)), benchGen)
	for _, tc := range []struct {
		name string
		key  func(Entry) string
	}{{"all", Grouping{}.Key}, {"site", BySite}, {"country", Grouping{By: GroupCountry}.Key}, {"asn", Grouping{By: GroupASN}.Key}} {
		b.Run("by="+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Latency(entries, tc.key)
			}
		})
	}
}

func BenchmarkInflation(b *testing.B) {
	entries := genEntries(rand.New(rand.NewPCG(1, 2)), benchGen)
	for _, g := range []Grouping{{By: GroupCountry}, {By: GroupASN}} {
		b.Run("by="+string(g.By), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Inflation(entries, InflationOptions{Grouping: g})
			}
		})
	}
}
