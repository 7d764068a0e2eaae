package collector_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/anycatch/anycatch/measure"
)

// TestDeclaredLocationGivesCountry: without GeoIP databases (the test
// collector has none) a probe that declares coordinates gets the country
// and continent of those coordinates, not "unknown".
func TestDeclaredLocationGivesCountry(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	for _, tc := range []struct {
		lat, lon           float64
		country, continent string
	}{
		{-23.55, -46.63, "BR", "SA"}, // São Paulo
		{52.37, 4.90, "NL", "EU"},    // Amsterdam, on the coast
		{30.0, -40.0, "", ""},        // open sea: nothing made up
	} {
		hb, _ := json.Marshal(measure.Heartbeat{Version: "1", Location: &measure.Location{Lat: tc.lat, Lon: tc.lon}})
		if resp, b := p.do(http.MethodPost, measure.PathHeartbeat, hb, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("heartbeat: %d %s", resp.StatusCode, b)
		}
		e.store.mu.Lock()
		g := e.store.beats[len(e.store.beats)-1].Geo
		e.store.mu.Unlock()
		if g.Country != tc.country || g.Continent != tc.continent {
			t.Errorf("declared (%v, %v): country %q continent %q, want %q %q", tc.lat, tc.lon, g.Country, g.Continent, tc.country, tc.continent)
		}
	}
}
