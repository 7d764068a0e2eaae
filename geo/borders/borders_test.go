package borders

import "testing"

// TestCountry checks well-known places, including ones that are hard for
// simplified boundaries: a coastal city, an enclave, a small state, an
// island, both sides of a border, and open sea.
func TestCountry(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lat, lon float64
		want     string
	}{
		{"Berlin", 52.52, 13.40, "DE"},
		{"Amsterdam (coast)", 52.37, 4.90, "NL"},
		{"Sao Paulo", -23.55, -46.63, "BR"},
		{"Buenos Aires (river shore)", -34.60, -58.38, "AR"},
		{"Maseru, Lesotho inside South Africa", -29.31, 27.48, "LS"},
		{"Johannesburg", -26.20, 28.05, "ZA"},
		{"Luxembourg", 49.61, 6.13, "LU"},
		{"Singapore", 1.35, 103.82, "SG"},
		{"Reykjavik", 64.15, -21.94, "IS"},
		{"Tokyo", 35.68, 139.69, "JP"},
		{"Sydney", -33.87, 151.21, "AU"},
		{"Strasbourg, next to Germany", 48.58, 7.75, "FR"},
		{"Kehl, across the Rhine", 48.57, 7.82, "DE"},
		{"Mid-Atlantic", 30.0, -40.0, ""},
		{"bad latitude", 95, 0, ""},
	} {
		if got := Country(tc.lat, tc.lon); got != tc.want {
			t.Errorf("%s (%v, %v): got %q, want %q", tc.name, tc.lat, tc.lon, got, tc.want)
		}
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	if _, err := decode([]byte("not gzip")); err == nil {
		t.Error("decode accepted garbage")
	}
	cs, err := decode(data)
	if err != nil || len(cs) < 200 {
		t.Fatalf("embedded data: %d countries, %v", len(cs), err)
	}
}

func BenchmarkCountry(b *testing.B) {
	Country(0, 0)
	for i := 0; b.Loop(); i++ {
		Country(-60+float64(i%120), -170+float64(i%340))
	}
}
