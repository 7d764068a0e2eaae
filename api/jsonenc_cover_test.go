package api

import (
	"reflect"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/internal/fieldcover"
)

// TestJSONFixturesCoverEveryField guards the hand-written report encoders
// (jsonenc.go, writeCatchmentReport, writeLatencyReport) against drift:
// the *MatchesEncodingJSON tests compare them with encoding/json only for
// the fields their fixtures set, so a new field of a report type that
// every fixture leaves zero (and that an encoder forgot) would go
// unnoticed. This test fails until a fixture sets every encoded field;
// the comparisons then fail until the encoder writes it.
func TestJSONFixturesCoverEveryField(t *testing.T) {
	stats, cells, groups := jsonAggregates()
	probes := jsonProbes()
	var features []any
	for _, p := range probes {
		features = append(features, geoFeature{Type: "Feature", Geometry: geoPoint{Type: "Point", Coordinates: [2]float64{1, 2}}, Properties: p})
	}
	for _, tc := range []struct {
		typ      reflect.Type
		fixtures []any
		where    string
	}{
		{reflect.TypeFor[CatchmentReport](), anys(jsonCatchmentReports()), "jsonCatchmentReports, jsonProbes"},
		{reflect.TypeFor[geoFeature](), features, "jsonProbes"},
		{reflect.TypeFor[LatencyReport](), anys(jsonLatencyReports()), "jsonLatencyReports"},
		{reflect.TypeFor[catchment.LatencyStats](), anys(stats), "jsonAggregates"},
		{reflect.TypeFor[GroupSiteLatency](), anys(cells), "jsonAggregates"},
		{reflect.TypeFor[catchment.Group](), anys(groups), "jsonAggregates"},
	} {
		if unset := fieldcover.Unset(tc.typ, tc.fixtures...); len(unset) > 0 {
			t.Errorf("no fixture (%s in jsonenc_test.go) sets %s: the hand-written encoder is not compared with encoding/json for it; set it in a fixture",
				tc.where, strings.Join(unset, ", "))
		}
	}
}

func anys[T any](v []T) []any {
	out := make([]any, len(v))
	for i := range v {
		out[i] = &v[i]
	}
	return out
}
