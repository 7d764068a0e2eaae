package collector

import (
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/geo/borders"
	"github.com/anycatch/anycatch/measure"
)

// withDeclaredCountry fills the country and continent GeoIP did not know
// (no GeoIP database, or an address it has no country for) from the
// coordinates the volunteer declared, using the embedded Natural Earth
// boundaries. Without it every probe of a server without GeoIP is in
// country "unknown", and reports group the whole world together.
func withDeclaredCountry(g geo.Info, l *measure.Location) geo.Info {
	if g.Country != "" || l == nil {
		return g
	}
	if cc := borders.Country(l.Lat, l.Lon); cc != "" {
		g.Country, g.Continent = cc, catchment.ContinentOf(cc)
	}
	return g
}
