package catchment

import (
	"math"
	"slices"
)

// Speed-of-light check (the idea behind iGreedy, Cicalese et al. 2015): a
// reply cannot travel faster than light in fibre, about 200 km per ms one
// way, so a round trip of r ms bounds the distance to whoever answered by
// about r × 100 km. A result whose site is farther from its probe than its
// RTT allows is physically impossible: a wrong rule, wrong site
// coordinates, or a wrong probe location.
const (
	KmPerMSRTT = 100.0 // distance bound per ms of round-trip time
	// SlackKm absorbs coordinates that name a city, not a building, and
	// probe geolocation that is only city-accurate.
	SlackKm = 100.0
)

// Point is a location in degrees.
type Point struct{ Lat, Lon float64 }

// DistanceKm is the great-circle distance between a and b (haversine,
// mean Earth radius).
func DistanceKm(a, b Point) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

// MaxKm is the farthest a responder can be for a reply after rttMS.
func MaxKm(rttMS float64) float64 { return rttMS*KmPerMSRTT + SlackKm }

// Impossible reports whether a reply after rttMS cannot have come from
// site to probe. A non-positive or NaN RTT proves nothing.
func Impossible(probe, site Point, rttMS float64) bool {
	if !(rttMS > 0) {
		return false
	}
	return DistanceKm(probe, site) > MaxKm(rttMS)
}

// Candidate is a site a reply could have come from.
type Candidate struct {
	Site string  `json:"site"`
	Km   float64 `json:"km"`
}

// Candidates lists the sites that could have answered probe after rttMS
// (nearest first, ties by code). For an unidentified result these are the
// sites still possible; the first is the best guess (an inference, never
// an identification).
func Candidates(probe Point, rttMS float64, sites map[string]Point) []Candidate {
	var out []Candidate
	for code, p := range sites {
		km := DistanceKm(probe, p)
		if rttMS > 0 && km > MaxKm(rttMS) {
			continue
		}
		out = append(out, Candidate{Site: code, Km: math.Round(km)})
	}
	slices.SortFunc(out, func(a, b Candidate) int {
		if a.Km != b.Km {
			if a.Km < b.Km {
				return -1
			}
			return 1
		}
		if a.Site < b.Site {
			return -1
		}
		if a.Site > b.Site {
			return 1
		}
		return 0
	})
	return out
}
