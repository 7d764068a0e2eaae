package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

// TestProbeJSONMatchesEncodingJSON keeps the hand-written catchment JSON
// identical to what encoding/json writes for the same types.
func TestProbeJSONMatchesEncodingJSON(t *testing.T) {
	probes := jsonProbes()
	for i := range probes {
		want, err := json.Marshal(&probes[i])
		if err != nil {
			t.Fatal(err)
		}
		want = bytes.ReplaceAll(want, []byte(`\u003c`), []byte("<")) // the API encodes without HTML escaping
		want = bytes.ReplaceAll(want, []byte(`\u003e`), []byte(">"))
		want = bytes.ReplaceAll(want, []byte(`\u0026`), []byte("&"))
		if got := appendProbeJSON(nil, &probes[i], &probeTimes{}); !bytes.Equal(got, want) {
			t.Errorf("probe %d:\ngot  %s\nwant %s", i, got, want)
		}
	}
	if got := appendJSONFloat(nil, math.NaN()); string(got) != "null" {
		t.Errorf("NaN: got %s, want null", got)
	}

	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	for i, rep := range jsonCatchmentReports() {
		var got bytes.Buffer
		if err := writeCatchmentReport(&got, &rep, storedProbes(rep.Probes)); err != nil {
			t.Fatal(err)
		}
		want.Reset()
		_ = enc.Encode(rep)
		if got.String() != want.String() {
			t.Errorf("report %d:\ngot  %s\nwant %s", i, got.String(), want.String())
		}
	}

	fc := featureCollection{Type: "FeatureCollection", Features: []geoFeature{}}
	for _, p := range probes {
		if p.Lat != nil && p.Lon != nil {
			fc.Features = append(fc.Features, geoFeature{Type: "Feature", Geometry: geoPoint{Type: "Point", Coordinates: [2]float64{*p.Lon, *p.Lat}}, Properties: p})
		}
	}
	want.Reset()
	_ = enc.Encode(fc)
	var gj bytes.Buffer
	js := newJSONStream(&gj)
	js.raw(`{"type":"FeatureCollection","features":`)
	js.probes(storedProbes(probes), true)
	js.raw("}\n")
	if err := js.flush(); err != nil {
		t.Fatal(err)
	}
	if gj.String() != want.String() {
		t.Errorf("geojson:\ngot  %s\nwant %s", gj.String(), want.String())
	}
}

// jsonAt is the time of the JSON encoder fixtures.
var jsonAt = time.Date(2026, 11, 21, 5, 0, 0, 123456789, time.UTC)

// jsonProbes are the probe fixtures of the hand-written catchment JSON;
// together they set every field (TestJSONFixturesCoverEveryField).
func jsonProbes() []CatchmentProbe {
	f := func(v float64) *float64 { return &v }
	asn := int64(64500)
	at := jsonAt
	return []CatchmentProbe{
		{Probe: "p-1", AF: 4, State: catchment.StateSite, Site: "ams", Identity: "ams1.k", Source: "http_header:x-<pop>", RTT: f(12.5), ObservedAt: at, Since: at.Add(-time.Hour),
			Lat: f(52.4), Lon: f(4.9), Country: "NL", Continent: "EU", ASN: &asn},
		{Probe: "atlas:1234", AF: 6, State: catchment.StateUnreachable, ObservedAt: at, Since: at.In(time.FixedZone("x", 3600))},
		{Probe: "p-3", State: catchment.StateUnidentified, Identity: "we\"ird\\ <host>&\u2028\x01ü", RTT: f(1e-7), Lat: f(-0.1), Lon: f(-179.9)},
		{Probe: "p-4", RTT: f(1e21), Lat: f(0), Lon: f(123456789.125), ASN: new(int64)},
		{Probe: "p-5", RTT: f(0.000001), Lat: f(-33.9), Lon: f(151.2)},
	}
}

// jsonCatchmentReports are catchment report fixtures with jsonProbes;
// together they set every field.
func jsonCatchmentReports() []CatchmentReport {
	f := func(v float64) *float64 { return &v }
	af := 4
	rep := CatchmentReport{Target: "k-root", At: jsonAt, WindowSec: 900, AF: &af, Group: "country",
		Sites:  []Site{{Code: "ams", Name: "Amsterdam", Lat: f(52.3), Lon: f(4.8), Unicast4: "198.18.1.1", Unicast6: "2001:db8:1::1"}},
		Probes: jsonProbes(), Total: catchment.Group{Key: "all", Probes: 5, Sites: []catchment.SiteShare{{Site: "ams", Probes: 1, Share: 0.2}}},
		Groups: []catchment.Group{{Key: "NL", Probes: 1, Sites: []catchment.SiteShare{}}}}
	// full has every aggregate field set.
	_, _, groups := jsonAggregates()
	full := rep
	full.AF, full.Total, full.Groups = nil, groups[1], groups
	full.Total.Unreachable = 1
	latest := jsonAt.Add(-90 * time.Minute)
	full.LatestDataAt = &latest
	return []CatchmentReport{rep, full}
}

// storedProbes returns probes as the store's rows they are published from
// (with a blur that leaves positions as they are).
func storedProbes(probes []CatchmentProbe) *publishedProbes {
	rows := make([]CatchmentRow, len(probes))
	for i, p := range probes {
		rows[i] = CatchmentRow{Probe: p.Probe, AF: p.AF, State: p.State, Site: p.Site, Identity: p.Identity, Source: p.Source, RTT: p.RTT,
			ObservedAt: p.ObservedAt, Since: p.Since, Lat: p.Lat, Lon: p.Lon, Country: p.Country, Continent: p.Continent, ASN: p.ASN}
	}
	return &publishedProbes{rows: rows, blur: func(_ string, lat, lon float64) (float64, float64) { return lat, lon }}
}

func TestLatencyJSONMatchesEncodingJSON(t *testing.T) {
	for _, r := range jsonLatencyReports() {
		var got, want bytes.Buffer
		if err := writeLatencyReport(&got, &r); err != nil {
			t.Fatal(err)
		}
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(r)
		if got.String() != want.String() {
			t.Errorf("latency report:\ngot  %s\nwant %s", got.String(), want.String())
		}
	}
}

// jsonLatencyReports are latency report fixtures; together they set
// every field.
func jsonLatencyReports() []LatencyReport {
	f := func(v float64) *float64 { return &v }
	af := 6
	rep := LatencyReport{Target: "k-root", From: time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC),
		Kind: "identity", AF: &af, Group: "asn", Total: catchment.LatencyStats{Key: "all", Probes: 3, Count: 2, P50: f(12.25)},
		Sites: []catchment.LatencyStats{}, Groups: []catchment.LatencyStats{{Key: "AS1", Probes: 1}},
		Inflated: []catchment.Inflated{{Probe: "p-1", Group: "AS1", Site: "fra", RTT: 40.5, Baseline: 10, BaselineSource: "region",
			BaselineSite: "ams", BaselineProbe: "p-\"2", ExtraMS: 30.5, Ratio: 4.05}, {Probe: "p-3", RTT: 1e-7, Ratio: 1e22}},
		ByGroupSite: []GroupSiteLatency{{Group: "AS1", Site: "ams", Probes: 1, P50: f(10), Inflated: true}}}
	// full has every aggregate field set.
	stats, cells, _ := jsonAggregates()
	full := rep
	full.AF, full.Total, full.Sites, full.Groups, full.ByGroupSite = nil, stats[1], stats, stats[1:], cells
	return []LatencyReport{rep, full, {Target: "empty"}}
}

// TestAggregateJSONMatchesEncodingJSON keeps the hand-written encoders of
// report aggregates identical to encoding/json (HTML escaping off), which
// fails a whole value with a NaN or an infinity in it: the writers then
// leave the value to encoding/json, which writes null.
func TestAggregateJSONMatchesEncodingJSON(t *testing.T) {
	stats, cells, groups := jsonAggregates()
	encode := func(v any) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "null"
		}
		return string(bytes.TrimSuffix(b.Bytes(), []byte{'\n'}))
	}
	write := func(fn func(js *jsonStream)) string {
		var b bytes.Buffer
		js := newJSONStream(&b)
		fn(js)
		if err := js.flush(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	check := func(name string, v any, fn func(js *jsonStream)) {
		t.Helper()
		if got, want := write(fn), encode(v); got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", name, got, want)
		}
	}
	for i, bad := range []float64{0, math.NaN(), math.Inf(1), math.Inf(-1)} {
		s, c, g := slices.Clone(stats), slices.Clone(cells), slices.Clone(groups)
		if i > 0 {
			s[1].P90, c[0].Loss = &bad, bad
			g[1].Sites = []catchment.SiteShare{{Site: "ams", Probes: 1, Share: 1, MedianRTT: &bad}}
		}
		name := fmt.Sprint(bad)
		check(name+" stats", s, func(js *jsonStream) { array(js, s, latencyStatsFinite, appendLatencyStatsJSON) })
		check(name+" stat", s[1], func(js *jsonStream) { object(js, &s[1], latencyStatsFinite, appendLatencyStatsJSON) })
		check(name+" cells", c, func(js *jsonStream) { array(js, c, groupSiteFinite, appendGroupSiteJSON) })
		check(name+" groups", g, func(js *jsonStream) { array(js, g, groupFinite, appendGroupJSON) })
		check(name+" group", g[1], func(js *jsonStream) { object(js, &g[1], groupFinite, appendGroupJSON) })
	}
	check("nil stats", []catchment.LatencyStats(nil), func(js *jsonStream) { array(js, nil, latencyStatsFinite, appendLatencyStatsJSON) })
	check("no cells", []GroupSiteLatency{}, func(js *jsonStream) { array(js, []GroupSiteLatency{}, groupSiteFinite, appendGroupSiteJSON) })
}

// jsonAggregates are report aggregate fixtures; together they set every
// field.
func jsonAggregates() (stats []catchment.LatencyStats, cells []GroupSiteLatency, groups []catchment.Group) {
	f := func(v float64) *float64 { return &v }
	stats = []catchment.LatencyStats{
		{Key: "all"},
		{Key: "AS64500", Probes: 3, Loss: 1.0 / 3, Count: 2, Min: f(1e-7), P50: f(12.5), P90: f(12.5), P99: f(1e21), Max: f(math.Copysign(0, -1))},
		{Key: "we\"ird <ü>", Probes: 1, Count: 1, P50: f(3)},
	}
	cells = []GroupSiteLatency{
		{Group: "NL", Site: "ams", Probes: 2, Count: 2, Min: f(1), P50: f(1.5), P90: f(1.9), P99: f(1.99), Max: f(2), InflatedProbes: 1, Inflated: true},
		{Group: "asia\x00pacific", Site: "?", Probes: 1, Loss: 1},
		{Group: "x", Site: "unreachable", Probes: 1, Count: 1, Min: f(7), P50: f(7), P90: f(7), P99: f(7), Max: f(7)},
	}
	groups = []catchment.Group{
		{Key: "all"},
		{Key: "NL", Probes: 3, Sites: []catchment.SiteShare{{Site: "ams", Probes: 2, Share: 2.0 / 3, MedianRTT: f(4.25)}, {Site: "<fra>", Probes: 1, Share: 1.0 / 3}},
			Unidentified: 1, Unmapped: map[string]int{"b": 1, "": 2, "a\"<&>": 3, "ü": 4}},
		{Key: "DE", Sites: []catchment.SiteShare{}, Unreachable: 2, Unmapped: map[string]int{}},
	}
	return stats, cells, groups
}

// TestJSONTime compares appendJSONTime with package time's RFC3339Nano
// (and encoding/json where it accepts the time) across zones, years and
// fractions.
func TestJSONTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	locs := []*time.Location{time.UTC, time.FixedZone("UTC", 0), time.FixedZone("x", 0), time.FixedZone("y", 3600),
		time.FixedZone("z", -5400-17), time.Local}
	for i := range 100000 {
		tm := time.Unix(r.Int64N(700e9)-350e9, r.Int64N(1e9)).In(locs[r.IntN(len(locs))])
		switch i % 4 {
		case 0:
			tm = tm.Truncate(time.Second)
		case 1:
			tm = tm.Truncate(time.Millisecond)
		case 2:
			tm = tm.Round(10 * time.Nanosecond)
		}
		want := "null"
		if y := tm.Year(); y >= 0 && y <= 9999 {
			want = `"` + tm.Format(time.RFC3339Nano) + `"`
		}
		if got := string(appendJSONTime(nil, tm)); got != want {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
		// a run of close times, as in a report: the date is reused
		var tt timeText
		for k := range 5 {
			tk := tm.Add(time.Duration(k*k) * 7 * time.Hour)
			want := "null"
			if y := tk.Year(); y >= 0 && y <= 9999 {
				want = `"` + tk.Format(time.RFC3339Nano) + `"`
			}
			if got := string(tt.append(nil, tk)); got != want {
				t.Fatalf("%v after %v: got %s, want %s", tk, tm, got, want)
			}
		}
		if _, offset := tm.Zone(); offset%60 == 0 {
			if enc := string(appendJSONValue(nil, tm)); enc != want {
				t.Fatalf("%v: got %s, encoding/json writes %s", tm, want, enc)
			}
		}
	}
}

// BenchmarkCatchmentJSON compares the hand-written encoder with
// encoding/json on 10,000 probes.
func BenchmarkCatchmentJSON(b *testing.B) {
	f := func(v float64) *float64 { return &v }
	asn := int64(64500)
	at := time.Now().UTC()
	probes := make([]CatchmentProbe, 10000)
	for i := range probes {
		probes[i] = CatchmentProbe{Probe: "p-000000000" + string(rune('a'+i%26)), AF: 4, State: catchment.StateSite, Site: "ams", Identity: "ams1.seed",
			RTT: f(float64(i%300) + 0.123), ObservedAt: at, Since: at, Lat: f(float64(i%160) - 80.1), Lon: f(float64(i%360) - 180.3), Country: "DE", Continent: "EU", ASN: &asn}
	}
	rep := CatchmentReport{Target: "t", At: at, Probes: probes}
	rows := storedProbes(probes)
	b.Run("handwritten", func(b *testing.B) {
		for b.Loop() {
			_ = writeCatchmentReport(io.Discard, &rep, rows)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for b.Loop() {
			enc := json.NewEncoder(io.Discard)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(rep)
		}
	})
}
