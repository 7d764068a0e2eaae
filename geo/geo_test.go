package geo

import (
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// writeMMDB writes a tiny database of type dbType mapping each CIDR to its
// record and returns its path.
func writeMMDB(t testing.TB, dbType string, recs map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range recs {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// CityDB writes a GeoLite2-City shaped test database.
func cityDB(t testing.TB) string {
	return writeMMDB(t, "GeoLite2-City", map[string]mmdbtype.Map{
		"203.0.113.0/24": {
			"continent": mmdbtype.Map{"code": mmdbtype.String("EU")},
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String("NL")},
			"city":      mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Amsterdam")}},
			"location":  mmdbtype.Map{"latitude": mmdbtype.Float64(52.37), "longitude": mmdbtype.Float64(4.89)},
		},
		"2001:db8::/32": {
			"continent":          mmdbtype.Map{"code": mmdbtype.String("AS")},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("JP")},
		},
	})
}

func asnDB(t testing.TB) string {
	return writeMMDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"203.0.113.0/25": {
			"autonomous_system_number":       mmdbtype.Uint32(64500),
			"autonomous_system_organization": mmdbtype.String("Example Net"),
		},
		"2001:db8:1::/48": {
			"autonomous_system_number":       mmdbtype.Uint32(64501),
			"autonomous_system_organization": mmdbtype.String("Example Six"),
		},
	})
}

func f64(v float64) *float64 { return &v }

func TestLookup(t *testing.T) {
	r, err := Open(cityDB(t), asnDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		name string
		addr string
		want Info
	}{
		{"v4 full", "203.0.113.10", Info{ASN: 64500, ASName: "Example Net", Prefix: netip.MustParsePrefix("203.0.113.0/25"),
			Country: "NL", Continent: "EU", City: "Amsterdam", Lat: f64(52.37), Lon: f64(4.89)}},
		{"v4 mapped", "::ffff:203.0.113.10", Info{ASN: 64500, ASName: "Example Net", Prefix: netip.MustParsePrefix("203.0.113.0/25"),
			Country: "NL", Continent: "EU", City: "Amsterdam", Lat: f64(52.37), Lon: f64(4.89)}},
		{"v4 city only", "203.0.113.200", Info{Country: "NL", Continent: "EU", City: "Amsterdam", Lat: f64(52.37), Lon: f64(4.89)}},
		{"v6 registered country", "2001:db8:1::1", Info{ASN: 64501, ASName: "Example Six", Prefix: netip.MustParsePrefix("2001:db8:1::/48"),
			Country: "JP", Continent: "AS"}},
		{"unknown", "198.51.100.1", Info{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Lookup(netip.MustParseAddr(tt.addr))
			if !sameInfo(got, tt.want) {
				t.Errorf("Lookup(%s) = %+v, want %+v", tt.addr, got, tt.want)
			}
		})
	}
}

func sameInfo(a, b Info) bool {
	eq := func(x, y *float64) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return a.ASN == b.ASN && a.ASName == b.ASName && a.Prefix == b.Prefix && a.Country == b.Country &&
		a.Continent == b.Continent && a.City == b.City && eq(a.Lat, b.Lat) && eq(a.Lon, b.Lon)
}

func TestFlatIPLocationDB(t *testing.T) {
	country := writeMMDB(t, "iptoasn-country", map[string]mmdbtype.Map{
		"203.0.113.0/24": {"country_code": mmdbtype.String("DE")},
	})
	asn := writeMMDB(t, "iptoasn-asn", map[string]mmdbtype.Map{
		"203.0.113.0/24": {"autonomous_system_number": mmdbtype.Uint32(64502), "autonomous_system_organization": mmdbtype.String("Flat AS")},
	})
	r, err := Open(country, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := r.Lookup(netip.MustParseAddr("203.0.113.1"))
	want := Info{ASN: 64502, ASName: "Flat AS", Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "DE"}
	if !sameInfo(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestMissingDatabases(t *testing.T) {
	var nilR *Resolver
	if got := nilR.Lookup(netip.MustParseAddr("203.0.113.1")); !sameInfo(got, Info{}) {
		t.Errorf("nil resolver: got %+v, want empty", got)
	}
	r, err := Open("", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Lookup(netip.MustParseAddr("203.0.113.1")); !sameInfo(got, Info{}) {
		t.Errorf("empty resolver: got %+v, want empty", got)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "nope.mmdb"), ""); err == nil {
		t.Error("Open of a missing file: got nil error, want one")
	}
}

func TestBlur(t *testing.T) {
	lat, lon := 52.3702, 4.8952
	a1, o1 := Blur("p-abc", lat, lon)
	a2, o2 := Blur("p-abc", lat, lon)
	if a1 != a2 || o1 != o2 {
		t.Fatalf("Blur not deterministic: (%v,%v) vs (%v,%v)", a1, o1, a2, o2)
	}
	b1, p1 := Blur("p-other", lat, lon)
	if a1 == b1 && o1 == p1 {
		t.Errorf("two probes got the same offset")
	}
	for _, id := range []string{"p-abc", "p-other", "p-1", "p-2", "p-3", "p-4"} {
		la, lo := Blur(id, lat, lon)
		d := metres(lat, lon, la, lo)
		// grid snap (≤ ~400 m) plus 200..600 m offset
		if d < 1 || d > 1100 {
			t.Errorf("Blur(%s): moved %.0f m, want a few hundred metres", id, d)
		}
	}
	if la, lo := Blur("p-x", 0, 179.9999); la < -90 || la > 90 || lo < -180 || lo > 180 {
		t.Errorf("Blur near antimeridian out of range: %v %v", la, lo)
	}
}

func metres(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371000.0
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}
