package api

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

// TestProbeJSONMatchesEncodingJSON keeps the hand-written catchment JSON
// identical to what encoding/json writes for the same types.
func TestProbeJSONMatchesEncodingJSON(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	asn := int64(64500)
	at := time.Date(2026, 11, 21, 5, 0, 0, 123456789, time.UTC)
	probes := []CatchmentProbe{
		{Probe: "p-1", AF: 4, State: catchment.StateSite, Site: "ams", Identity: "ams1.k", RTT: f(12.5), ObservedAt: at, Since: at.Add(-time.Hour),
			Lat: f(52.4), Lon: f(4.9), Country: "NL", Continent: "EU", ASN: &asn},
		{Probe: "atlas:1234", AF: 6, State: catchment.StateUnreachable, ObservedAt: at, Since: at.In(time.FixedZone("x", 3600))},
		{Probe: "p-3", State: catchment.StateUnidentified, Identity: "we\"ird\\ <host>&\u2028\x01ü", RTT: f(1e-7), Lat: f(-0.1), Lon: f(-179.9)},
		{Probe: "p-4", RTT: f(1e21), Lat: f(0), Lon: f(123456789.125), ASN: new(int64)},
		{Probe: "p-5", RTT: f(0.000001), Lat: f(-33.9), Lon: f(151.2)},
	}
	for i := range probes {
		want, err := json.Marshal(&probes[i])
		if err != nil {
			t.Fatal(err)
		}
		want = bytes.ReplaceAll(want, []byte(`\u003c`), []byte("<")) // the API encodes without HTML escaping
		want = bytes.ReplaceAll(want, []byte(`\u003e`), []byte(">"))
		want = bytes.ReplaceAll(want, []byte(`\u0026`), []byte("&"))
		if got := appendProbeJSON(nil, &probes[i]); !bytes.Equal(got, want) {
			t.Errorf("probe %d:\ngot  %s\nwant %s", i, got, want)
		}
	}
	if got := appendJSONFloat(nil, math.NaN()); string(got) != "null" {
		t.Errorf("NaN: got %s, want null", got)
	}

	af := 4
	rep := CatchmentReport{Target: "k-root", At: at, WindowSec: 900, AF: &af, Group: "country", Sites: []Site{{Code: "ams", Lat: f(52.3)}},
		Probes: probes, Total: catchment.Group{Key: "all", Probes: 5, Sites: []catchment.SiteShare{{Site: "ams", Probes: 1, Share: 0.2}}},
		Groups: []catchment.Group{{Key: "NL", Probes: 1, Sites: []catchment.SiteShare{}}}}
	var got, want bytes.Buffer
	if err := writeCatchmentReport(&got, &rep, true); err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(rep)
	if got.String() != want.String() {
		t.Errorf("report:\ngot  %s\nwant %s", got.String(), want.String())
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
	js.probes(probes, true)
	js.raw("}\n")
	if err := js.flush(); err != nil {
		t.Fatal(err)
	}
	if gj.String() != want.String() {
		t.Errorf("geojson:\ngot  %s\nwant %s", gj.String(), want.String())
	}
}

func TestLatencyJSONMatchesEncodingJSON(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	af := 6
	rep := LatencyReport{Target: "k-root", From: time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC),
		Kind: "identity", AF: &af, Group: "asn", Total: catchment.LatencyStats{Key: "all", Probes: 3, Count: 2, P50: f(12.25)},
		Sites: []catchment.LatencyStats{}, Groups: []catchment.LatencyStats{{Key: "AS1", Probes: 1}},
		Inflated: []catchment.Inflated{{Probe: "p-1", Group: "AS1", Site: "fra", RTT: 40.5, Baseline: 10, BaselineSource: "region",
			BaselineSite: "ams", BaselineProbe: "p-\"2", ExtraMS: 30.5, Ratio: 4.05}, {Probe: "p-3", RTT: 1e-7, Ratio: 1e22}},
		ByGroupSite: []GroupSiteLatency{{Group: "AS1", Site: "ams", Probes: 1, P50: f(10), Inflated: true}}}
	for _, r := range []LatencyReport{rep, {Target: "empty"}} {
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
	b.Run("handwritten", func(b *testing.B) {
		for b.Loop() {
			_ = writeCatchmentReport(io.Discard, &rep, true)
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
