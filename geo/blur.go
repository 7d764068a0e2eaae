package geo

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
)

// Blur parameters: coordinates are first snapped to a grid of gridDeg
// degrees, then moved by a per-probe offset of minBlurM..maxBlurM metres.
const (
	gridDeg  = 0.005 // ≈ 550 m of latitude
	minBlurM = 200.0
	maxBlurM = 600.0
)

// Blur returns the position to publish for a probe located at lat, lon.
// The result is deterministic for a probe (so its marker does not wander
// between page loads, which would let an observer average the noise away),
// and a few hundred metres from the true position.
//
// Probe ids are public, so the per-probe offset alone could be undone by
// anyone who knows this function; the position is therefore snapped to a
// ≈500 m grid first, and undoing the offset reveals only the grid cell.
func Blur(probeID string, lat, lon float64) (float64, float64) {
	if math.IsNaN(lat) || math.IsNaN(lon) {
		return lat, lon
	}
	lat = math.Round(lat/gridDeg) * gridDeg
	lon = math.Round(lon/gridDeg) * gridDeg

	h := sha256.Sum256([]byte("anycatch-blur-v1\x00" + probeID))
	u1 := float64(binary.BigEndian.Uint64(h[0:8])) / math.MaxUint64  // direction
	u2 := float64(binary.BigEndian.Uint64(h[8:16])) / math.MaxUint64 // distance
	theta := 2 * math.Pi * u1
	dist := minBlurM + (maxBlurM-minBlurM)*u2

	const metresPerDegLat = 111_320.0
	dLat := dist * math.Cos(theta) / metresPerDegLat
	cosLat := math.Cos(lat * math.Pi / 180)
	if cosLat < 0.01 {
		cosLat = 0.01 // near the poles longitude barely matters
	}
	dLon := dist * math.Sin(theta) / (metresPerDegLat * cosLat)

	lat = math.Max(-90, math.Min(90, lat+dLat))
	lon += dLon
	if lon > 180 {
		lon -= 360
	} else if lon < -180 {
		lon += 360
	}
	return lat, lon
}
