// Package geo geolocates probes from their source address using MaxMind
// DB files: a City- or Country-shaped database (GeoLite2-City,
// GeoLite2-Country, DB-IP City/Country Lite) and an ASN-shaped one
// (GeoLite2-ASN, DB-IP ASN Lite). Flat ip-location-db files (top-level
// country_code, autonomous_system_number, … keys) are read too, through
// maxminddb directly, because geoip2 refuses their database type.
//
// Every part is optional: a nil *Resolver, or one opened without files,
// answers every lookup with an empty [Info], so a collector runs without
// GeoIP data and simply stores less about its probes.
package geo

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Info is what the databases say about one address. Zero fields mean
// unknown.
type Info struct {
	ASN       uint32       `json:"asn,omitempty"`
	ASName    string       `json:"as_name,omitempty"`
	Prefix    netip.Prefix `json:"prefix,omitzero"`     // network of the ASN record (≈ the announced prefix)
	Country   string       `json:"country,omitempty"`   // ISO 3166-1 alpha-2
	Continent string       `json:"continent,omitempty"` // two-letter code
	City      string       `json:"city,omitempty"`      // English name
	Lat       *float64     `json:"lat,omitempty"`
	Lon       *float64     `json:"lon,omitempty"`
}

// Resolver answers [Info] lookups. It is safe for concurrent use.
type Resolver struct {
	city     *geoip2.Reader    // City/Country shaped
	cityFlat *maxminddb.Reader // ip-location-db shaped location file
	asn      *geoip2.Reader    // ASN shaped
	asnFlat  *maxminddb.Reader // ip-location-db shaped ASN file
}

// flat is the shape of ip-location-db mmdb files (and a useful subset of
// other flat files).
type flat struct {
	CountryCode string   `maxminddb:"country_code"`
	City        string   `maxminddb:"city"`
	Latitude    *float64 `maxminddb:"latitude"`
	Longitude   *float64 `maxminddb:"longitude"`
	ASN         uint     `maxminddb:"autonomous_system_number"`
	ASOrg       string   `maxminddb:"autonomous_system_organization"`
}

// Open opens the location database at cityPath and the ASN database at
// asnPath. An empty path skips that database. A file that exists but cannot
// be read is an error: silently running without GeoIP after a typo is
// worse than refusing to start.
func Open(cityPath, asnPath string) (*Resolver, error) {
	r := &Resolver{}
	if cityPath != "" {
		g, m, err := open(cityPath)
		if err != nil {
			return nil, fmt.Errorf("open location database: %w", err)
		}
		r.city, r.cityFlat = g, m
	}
	if asnPath != "" {
		g, m, err := open(asnPath)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("open asn database: %w", err)
		}
		r.asn, r.asnFlat = g, m
	}
	return r, nil
}

// open returns a geoip2 reader for known database types, or a plain
// maxminddb reader for the flat shapes geoip2 does not know.
func open(path string) (*geoip2.Reader, *maxminddb.Reader, error) {
	g, err := geoip2.Open(path)
	if err == nil {
		return g, nil, nil
	}
	var unknown geoip2.UnknownDatabaseTypeError
	if !errors.As(err, &unknown) {
		return nil, nil, err
	}
	if g != nil {
		g.Close()
	}
	m, err := maxminddb.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return nil, m, nil
}

// Close releases the databases.
func (r *Resolver) Close() error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, g := range []*geoip2.Reader{r.city, r.asn} {
		if g != nil {
			errs = append(errs, g.Close())
		}
	}
	for _, m := range []*maxminddb.Reader{r.cityFlat, r.asnFlat} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// Lookup returns what is known about addr. Lookup errors (a corrupt record)
// leave the affected fields empty: geolocation is best effort.
func (r *Resolver) Lookup(addr netip.Addr) Info {
	var info Info
	if r == nil || !addr.IsValid() {
		return info
	}
	addr = addr.Unmap()
	if r.city != nil {
		if c, err := r.city.City(addr); err == nil && c != nil {
			info.Country = c.Country.ISOCode
			if info.Country == "" {
				info.Country = c.RegisteredCountry.ISOCode
			}
			info.Continent = c.Continent.Code
			info.City = c.City.Names.English
			if c.Location.HasCoordinates() {
				lat, lon := *c.Location.Latitude, *c.Location.Longitude
				info.Lat, info.Lon = &lat, &lon
			}
		}
	} else if r.cityFlat != nil {
		var f flat
		if err := r.cityFlat.Lookup(addr).Decode(&f); err == nil {
			info.Country = f.CountryCode
			info.City = f.City
			if f.Latitude != nil && f.Longitude != nil {
				info.Lat, info.Lon = f.Latitude, f.Longitude
			}
		}
	}
	if r.asn != nil {
		if a, err := r.asn.ASN(addr); err == nil && a != nil && a.AutonomousSystemNumber != 0 {
			info.ASN = uint32(a.AutonomousSystemNumber)
			info.ASName = a.AutonomousSystemOrganization
			info.Prefix = a.Network
		}
	} else if r.asnFlat != nil {
		res := r.asnFlat.Lookup(addr)
		var f flat
		if err := res.Decode(&f); err == nil && f.ASN != 0 {
			info.ASN = uint32(f.ASN)
			info.ASName = f.ASOrg
			info.Prefix = res.Prefix()
		}
	}
	return info
}
