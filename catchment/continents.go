package catchment

import (
	_ "embed"
	"strings"
)

//go:embed continents.tsv
var continentsTSV string

// Continent codes as used by GeoNames and MaxMind.
var Continents = map[string]string{
	"AF": "Africa",
	"AN": "Antarctica",
	"AS": "Asia",
	"EU": "Europe",
	"NA": "North America",
	"OC": "Oceania",
	"SA": "South America",
}

var countryContinent = parseContinents(continentsTSV)

func parseContinents(data string) map[string]string {
	m := make(map[string]string, 256)
	for line := range strings.SplitSeq(data, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) < 2 {
			panic("catchment: bad line in continents.tsv: " + line)
		}
		m[f[0]] = f[1]
	}
	return m
}

// ContinentOf returns the two-letter continent code of an ISO 3166-1
// alpha-2 country code (either case), or "" when the code is unknown.
func ContinentOf(country string) string {
	if len(country) != 2 {
		return ""
	}
	return countryContinent[strings.ToUpper(country)]
}
