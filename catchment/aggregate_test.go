package catchment

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
)

func ms(v float64) *float64 { return &v }

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"single", []float64{7}, 50, 7},
		{"median odd", []float64{1, 2, 3}, 50, 2},
		{"median even interpolates", []float64{1, 2, 3, 4}, 50, 2.5},
		{"p90 of 1..10", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9.1},
		{"p99 of 1..10", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 9.91},
		{"p0 is min", []float64{3, 4}, 0, 3},
		{"p100 is max", []float64{3, 4}, 100, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.values, tt.p); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("empty: got %v, want NaN", got)
	}
}

func TestContinentOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"NL", "EU"}, {"nl", "EU"}, {"US", "NA"}, {"BR", "SA"}, {"JP", "AS"}, {"TR", "AS"},
		{"EG", "AF"}, {"AU", "OC"}, {"AQ", "AN"}, {"PA", "NA"}, {"RU", "EU"}, {"XX", ""}, {"", ""}, {"NLD", ""},
	} {
		if got := ContinentOf(tc.in); got != tc.want {
			t.Errorf("ContinentOf(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
	if n := len(countryContinent); n != 250 {
		t.Errorf("got %d countries, want 250 (249 ISO 3166-1 codes + XK)", n)
	}
	for cc, cont := range countryContinent {
		if _, ok := Continents[cont]; !ok {
			t.Errorf("country %s: got continent %q, want one of the 7 codes", cc, cont)
		}
	}
}

var entries = []Entry{
	{Probe: "p1", State: StateSite, Site: "ams", RTT: ms(10), Country: "NL", ASN: 1136},
	{Probe: "p2", State: StateSite, Site: "ams", RTT: ms(20), Country: "NL", ASN: 1136},
	{Probe: "p3", State: StateSite, Site: "fra", RTT: ms(30), Country: "NL", ASN: 3320},
	{Probe: "p4", State: StateUnidentified, Identity: "weird", RTT: ms(5), Country: "NL"},
	{Probe: "p5", State: StateUnreachable, Country: "NL"},
	{Probe: "p6", State: StateSite, Site: "fra", RTT: ms(8), Country: "DE", ASN: 3320},
	{Probe: "p7", State: StateSite, Site: "fra", RTT: ms(60), Country: "DE", ASN: 3320},
	{Probe: "p8", State: StateUnidentified, Country: "US", Continent: "NA"},
	{Probe: "p9", State: StateSite, Site: "lax", Country: ""},
}

func TestAggregate(t *testing.T) {
	byCountry := Aggregate(entries, Grouping{By: GroupCountry})
	gotKeys := []string{}
	for _, g := range byCountry {
		gotKeys = append(gotKeys, g.Key)
	}
	if want := []string{"DE", "NL", "US", Unknown}; !reflect.DeepEqual(gotKeys, want) {
		t.Fatalf("got keys %v, want %v", gotKeys, want)
	}
	nl := byCountry[1]
	want := Group{
		Key: "NL", Probes: 5, Unidentified: 1, Unreachable: 1, Unmapped: map[string]int{"weird": 1},
		Sites: []SiteShare{{Site: "ams", Probes: 2, Share: 0.4, MedianRTT: ms(15)}, {Site: "fra", Probes: 1, Share: 0.2, MedianRTT: ms(30)}},
	}
	if !reflect.DeepEqual(nl, want) {
		t.Errorf("NL: got %+v, want %+v", nl, want)
	}
	if lax := byCountry[3].Sites[0]; lax.MedianRTT != nil || lax.Probes != 1 {
		t.Errorf("site without RTT: got %+v, want 1 probe and no median", lax)
	}

	tests := []struct {
		name string
		g    Grouping
		want map[string]int // key -> probes
	}{
		{"all", Grouping{}, map[string]int{"all": 9}},
		{"continent derived from country", Grouping{By: GroupContinent}, map[string]int{"EU": 7, "NA": 1, Unknown: 1}},
		{"asn", Grouping{By: GroupASN}, map[string]int{"AS1136": 2, "AS3320": 3, Unknown: 4}},
		{"region", Grouping{By: GroupRegion, Regions: map[string]string{"NL": "benelux", "DE": "dach"}}, map[string]int{"benelux": 5, "dach": 2, Unknown: 2}},
		{"site", Grouping{By: GroupSite}, map[string]int{"ams": 2, "fra": 3, "lax": 1, "?weird": 1, "?": 1, "unreachable": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]int{}
			for _, g := range Aggregate(entries, tt.g) {
				got[g.Key] = g.Probes
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	got := Latency(entries, Grouping{By: GroupCountry}.Key)
	byKey := map[string]LatencyStats{}
	for _, s := range got {
		byKey[s.Key] = s
	}
	nl := byKey["NL"]
	// NL: RTTs 5, 10, 20, 30; one lost; five probes.
	if nl.Probes != 5 || nl.Count != 4 || nl.Loss != 0.2 || *nl.P50 != 15 || *nl.Min != 5 || *nl.Max != 30 {
		t.Errorf("NL: got probes %d count %d loss %v p50 %v min %v max %v, want 5 4 0.2 15 5 30", nl.Probes, nl.Count, nl.Loss, *nl.P50, *nl.Min, *nl.Max)
	}
	if p90 := *nl.P90; math.Abs(p90-27) > 1e-9 {
		t.Errorf("NL p90: got %v, want 27", p90)
	}
	if us := byKey["US"]; us.Probes != 1 || us.Count != 0 || us.P50 != nil || us.Loss != 0 {
		t.Errorf("US: got %+v, want 1 probe, no RTTs, no loss", us)
	}
	sites := map[string]LatencyStats{}
	for _, s := range Latency(entries, BySite) {
		sites[s.Key] = s
	}
	if fra := sites["fra"]; fra.Count != 3 || *fra.P50 != 30 {
		t.Errorf("fra: got count %d p50 %v, want 3 and 30", fra.Count, *fra.P50)
	}
	if u := sites["unreachable"]; u.Loss != 1 || u.Probes != 1 {
		t.Errorf("unreachable: got %+v, want loss 1 over 1 probe", u)
	}
}

func TestInflation(t *testing.T) {
	tests := []struct {
		name string
		opt  InflationOptions
		want []string // "probe:source:baseline"
	}{
		// EU best is p6 (8 ms): p2 20 (+12, 2.5x), p3 30, p7 60 inflated; p1 10 is not (+2).
		{"defaults by continent", InflationOptions{}, []string{"p7:region:8", "p3:region:8", "p2:region:8"}},
		{"stricter thresholds", InflationOptions{MinExtraMS: 25, MinRatio: 3}, []string{"p7:region:8"}},
		{"per country", InflationOptions{Grouping: Grouping{By: GroupCountry}}, []string{"p7:region:8", "p3:region:10"}},
		// p7 is close to its unicast RTT (not inflated); p2 is far from its own.
		{"unicast baseline wins", InflationOptions{Unicast: []UnicastRTT{{Probe: "p7", Site: "fra", RTT: 55}, {Probe: "p2", Site: "ams", RTT: 3}, {Probe: "p2", Site: "fra", RTT: 9}}},
			[]string{"p3:region:8", "p2:unicast:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, i := range Inflation(entries, tt.opt) {
				got = append(got, i.Probe+":"+i.BaselineSource+":"+ftoa(i.Baseline))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// TestSplitRTTs checks that splitting RTTs into groups gives every group
// exactly what slices.Sort gives for its part, bit for bit, on both sides
// of radixMin and with the values (NaN, negative zero) that make sortRTTs
// leave the sorting to slices.Sort.
func TestSplitRTTs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	specials := []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), -3.5, 5e-324, -5e-324, math.MaxFloat64, 12.25}
	for _, n := range []int{0, 1, 2, 17, radixMin - 1, radixMin, radixMin + 1, 5000} {
		for _, mix := range []struct {
			name string
			pick []float64 // specials to mix in
		}{{"plain", nil}, {"zeros and infinities", []float64{0, math.Inf(1), math.Inf(-1), -3.5, 5e-324, -5e-324, 12.25}},
			{"negative zero", specials[:2]}, {"nan", specials[2:3]}, {"all", specials}} {
			v := make([]float64, n)
			for i := range v {
				v[i] = 5 + 295*r.Float64()*r.Float64()
				if i%4 == 0 {
					v[i] = float64(r.IntN(50)) // repeats
				}
				if len(mix.pick) > 0 && r.IntN(10) == 0 {
					v[i] = mix.pick[r.IntN(len(mix.pick))]
				}
			}
			for _, groups := range []int{1, 3, 40} {
				group := make([]int32, n)
				for i := range group {
					group[i] = int32(r.IntN(groups))
				}
				all, start := splitRTTs(v, group, groups)
				for g := range groups {
					var want []float64
					for i := range v {
						if group[i] == int32(g) {
							want = append(want, v[i])
						}
					}
					slices.Sort(want)
					got := all[start[g]:start[g+1]]
					if len(got) != len(want) {
						t.Fatalf("n=%d %s, group %d of %d: got %d values, want %d", n, mix.name, g, groups, len(got), len(want))
					}
					for i := range got {
						if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
							t.Fatalf("n=%d %s, group %d of %d: at %d got %v, want %v", n, mix.name, g, groups, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

func TestDescending(t *testing.T) {
	vals := []float64{math.NaN(), math.Inf(-1), -1e300, -2.5, -5e-324, math.Copysign(0, -1), 0, 5e-324, 1, 2.5, 1e300, math.Inf(1)}
	for _, x := range vals {
		for _, y := range vals {
			want := cmp.Compare(y, x) // larger first
			if got := cmp.Compare(descending(x), descending(y)); got != want {
				t.Errorf("descending(%v) vs descending(%v): got %d, want %d", x, y, got, want)
			}
		}
	}
}

func TestKeyIndex(t *testing.T) {
	var x KeyIndex
	for i, k := range []string{"b", "a", "b", "", "a", "c"} {
		want := []int32{0, 1, 0, 2, 1, 3}[i]
		if got := x.ID(k); got != want {
			t.Errorf("ID(%q): got %d, want %d", k, got, want)
		}
	}
	if got, want := x.Keys(), []string{"b", "a", "", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys: got %q, want %q", got, want)
	}
}

// An Aggregator takes entries one at a time, from whatever shape the
// caller holds them in, and gives the catchment per group and in total.
func ExampleAggregator() {
	a := NewAggregator(Grouping{By: GroupCountry})
	for _, e := range entries {
		a.Add(&e)
	}
	for _, g := range append([]Group{a.Total()}, a.Groups()...) {
		fmt.Printf("%s: %d probes, %d unidentified, %d unreachable;", g.Key, g.Probes, g.Unidentified, g.Unreachable)
		for _, s := range g.Sites {
			fmt.Printf(" %s %.0f%%", s.Site, 100*s.Share)
		}
		fmt.Println()
	}
	// Output:
	// all: 9 probes, 2 unidentified, 1 unreachable; fra 33% ams 22% lax 11%
	// DE: 2 probes, 0 unidentified, 0 unreachable; fra 100%
	// NL: 5 probes, 1 unidentified, 1 unreachable; ams 40% fra 20%
	// US: 1 probes, 1 unidentified, 0 unreachable;
	// unknown: 1 probes, 0 unidentified, 0 unreachable; lax 100%
}
