package labstack

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/anycatch/anycatch/lab"
)

// labCountries names a country for the default lab's clients (by the first
// three letters of the client name), so census results and the map have
// countries; other clients get a location but no country.
var labCountries = map[string]string{"lon": "GB", "par": "FR", "waw": "PL", "nyc": "US", "chi": "US",
	"sgp": "SG", "tyo": "JP", "sao": "BR"}

var labContinents = map[string]string{"eu": "EU", "na": "NA", "ap": "AS", "sa": "SA", "af": "AF", "oc": "OC"}

// writeLabGeo writes GeoIP databases of the lab's client networks into dir
// (GeoLite2-City and GeoLite2-ASN shaped, like the test databases in
// package geo): each network at its client's position, in the client's
// country, originated by its transit's AS. The server reads them with
// --geoip-city/--geoip-asn, so the census (and probe metadata) has
// locations, countries and ASNs in the lab.
func writeLabGeo(dir string, l *lab.Lab) (city, asn string, err error) {
	ct, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		return "", "", err
	}
	at, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		return "", "", err
	}
	asns := map[string]uint32{}
	for _, tr := range l.Topology().Transits {
		asns[tr.Name] = tr.ASN
	}
	for _, c := range l.Clients() {
		rec := mmdbtype.Map{"location": mmdbtype.Map{"latitude": mmdbtype.Float64(c.Lat), "longitude": mmdbtype.Float64(c.Lon)}}
		if len(c.Name) >= 3 && labCountries[c.Name[:3]] != "" {
			rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(labCountries[c.Name[:3]])}
		}
		if cont := labContinents[c.Region]; cont != "" {
			rec["continent"] = mmdbtype.Map{"code": mmdbtype.String(cont)}
		}
		asRec := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(asns[c.Transit]),
			"autonomous_system_organization": mmdbtype.String("lab transit " + c.Transit)}
		var nets []netip.Prefix
		for _, a := range c.Addrs4() {
			nets = append(nets, netip.PrefixFrom(a, 24).Masked())
		}
		for _, a := range c.Addrs6() {
			nets = append(nets, netip.PrefixFrom(a, 64).Masked())
		}
		for _, p := range nets {
			n := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
			if err := ct.Insert(n, rec); err != nil {
				return "", "", fmt.Errorf("lab geo: %s: %w", p, err)
			}
			if err := at.Insert(n, asRec); err != nil {
				return "", "", fmt.Errorf("lab geo: %s: %w", p, err)
			}
		}
	}
	write := func(t *mmdbwriter.Tree, name string) (string, error) {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return "", err
		}
		if _, err := t.WriteTo(f); err != nil {
			f.Close()
			return "", err
		}
		return path, f.Close()
	}
	if city, err = write(ct, "lab-city.mmdb"); err != nil {
		return "", "", fmt.Errorf("lab geo: %w", err)
	}
	if asn, err = write(at, "lab-asn.mmdb"); err != nil {
		return "", "", fmt.Errorf("lab geo: %w", err)
	}
	return city, asn, nil
}
