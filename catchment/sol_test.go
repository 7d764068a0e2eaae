package catchment

import (
	"math"
	"testing"
)

var (
	ams = Point{52.31, 4.76}    // Amsterdam Schiphol
	fra = Point{50.03, 8.57}    // Frankfurt
	gru = Point{-23.43, -46.47} // São Paulo Guarulhos
	nrt = Point{35.76, 140.39}  // Tokyo Narita
)

func TestDistanceKm(t *testing.T) {
	for _, tt := range []struct {
		a, b Point
		want float64 // published great-circle distances, ±1%
	}{
		{ams, fra, 365},
		{ams, gru, 9790},
		{ams, nrt, 9310},
		{ams, ams, 0},
	} {
		if got := DistanceKm(tt.a, tt.b); math.Abs(got-tt.want) > 0.01*tt.want+1 {
			t.Errorf("DistanceKm(%v, %v) = %.0f, want %.0f", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestImpossible(t *testing.T) {
	for _, tt := range []struct {
		name        string
		probe, site Point
		rtt         float64
		want        bool
	}{
		{"ams probe, gru site, 5 ms: impossible", ams, gru, 5, true},
		{"ams probe, gru site, 200 ms: possible", ams, gru, 200, false},
		{"ams probe, fra site, 3 ms: possible (365 km < 400 km)", ams, fra, 3, false},
		{"ams probe, fra site, 2 ms: impossible (365 km > 300 km)", ams, fra, 2, true},
		{"same city, tiny rtt", ams, ams, 0.05, false},
		{"no rtt proves nothing", ams, gru, 0, false},
		{"NaN proves nothing", ams, gru, math.NaN(), false},
	} {
		if got := Impossible(tt.probe, tt.site, tt.rtt); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

func TestCandidates(t *testing.T) {
	sites := map[string]Point{"ams": ams, "fra": fra, "gru": gru, "nrt": nrt}
	got := Candidates(Point{51.9, 4.5}, 10, sites) // Rotterdam, 10 ms: 1100 km
	if len(got) != 2 || got[0].Site != "ams" || got[1].Site != "fra" {
		t.Errorf("got %+v, want ams then fra", got)
	}
	if got := Candidates(ams, 1000, sites); len(got) != 4 {
		t.Errorf("1000 ms: got %d candidates, want every site", len(got))
	}
	if got := Candidates(gru, 1, sites); len(got) != 1 || got[0].Site != "gru" {
		t.Errorf("gru probe 1 ms: got %+v, want only gru", got)
	}
}
