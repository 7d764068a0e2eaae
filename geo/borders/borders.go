// Package borders tells which country a coordinate lies in, offline, from
// embedded public-domain Natural Earth boundaries (1:50m admin-0, via
// world-atlas; regenerate countries.bin.gz with gen.go).
//
// It lets a server without GeoIP databases place a probe that declared
// its coordinates (the volunteer's own statement) in a country and
// continent instead of "unknown". 1:50m coasts are simplified (a point on
// a beach or in a small harbour may fall just outside), so a point in no
// polygon takes the nearest country within NearKm.
package borders

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

//go:embed countries.bin.gz
var data []byte

// NearKm is how far outside every polygon a point may be and still get
// the nearest country: a few km covers the simplified coastline; points
// farther out (at sea) get no country.
const NearKm = 10

type country struct {
	code                   string
	rings                  [][]point
	minX, minY, maxX, maxY float64 // degrees, lon/lat bounding box
}

type point struct{ x, y float64 } // lon, lat in degrees

var (
	loadOnce  sync.Once
	countries []country
	loadErr   error
)

// Country returns the ISO 3166-1 alpha-2 code of the country holding
// (lat, lon) in degrees, or of the nearest country within NearKm; "" when
// there is none (open sea, Antarctic ice shelves without a code, bad
// coordinates).
func Country(lat, lon float64) string {
	loadOnce.Do(func() { countries, loadErr = decode(data) })
	if loadErr != nil || math.IsNaN(lat) || math.IsNaN(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return ""
	}
	p := point{lon, lat}
	for i := range countries {
		c := &countries[i]
		if p.x < c.minX || p.x > c.maxX || p.y < c.minY || p.y > c.maxY {
			continue
		}
		if c.contains(p) {
			return c.code
		}
	}
	// Nearest boundary within NearKm, in a local equirectangular
	// projection (exact enough over a few km).
	marginLat := NearKm / 111.0
	kx := math.Cos(lat * math.Pi / 180)
	marginLon := marginLat / math.Max(kx, 0.01)
	best, bestKm := "", math.Inf(1)
	for i := range countries {
		c := &countries[i]
		if p.x < c.minX-marginLon || p.x > c.maxX+marginLon || p.y < c.minY-marginLat || p.y > c.maxY+marginLat {
			continue
		}
		for _, r := range c.rings {
			for j := 1; j < len(r); j++ {
				if d := segmentKm(p, r[j-1], r[j], kx); d < bestKm {
					best, bestKm = c.code, d
				}
			}
		}
	}
	if bestKm <= NearKm {
		return best
	}
	return ""
}

// contains is the even-odd rule over all rings: holes (lakes, enclaves
// such as Lesotho in South Africa) are rings too.
func (c *country) contains(p point) bool {
	in := false
	for _, r := range c.rings {
		for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
			a, b := r[i], r[j]
			if (a.y > p.y) != (b.y > p.y) && p.x < (b.x-a.x)*(p.y-a.y)/(b.y-a.y)+a.x {
				in = !in
			}
		}
	}
	return in
}

// segmentKm is the distance in km from p to the segment a-b, with
// longitudes scaled by kx = cos(latitude).
func segmentKm(p, a, b point, kx float64) float64 {
	ax, ay := (a.x-p.x)*kx, a.y-p.y
	bx, by := (b.x-p.x)*kx, b.y-p.y
	dx, dy := bx-ax, by-ay
	t := 0.0
	if l := dx*dx + dy*dy; l > 0 {
		t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l))
	}
	x, y := ax+t*dx, ay+t*dy
	return math.Hypot(x, y) * 111.195
}

// decode reads the format gen.go writes.
func decode(gz []byte) ([]country, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("borders: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("borders: %w", err)
	}
	if len(raw) < 36 || string(raw[:4]) != "ACB1" {
		return nil, errors.New("borders: not a boundaries file")
	}
	var tr [4]float64
	for i := range tr {
		tr[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[4+8*i:]))
	}
	r := bytes.NewReader(raw[36:])
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 1000 {
		return nil, fmt.Errorf("borders: country count: %v", err)
	}
	out := make([]country, 0, n)
	for range n {
		var code [2]byte
		if _, err := io.ReadFull(r, code[:]); err != nil {
			return nil, fmt.Errorf("borders: %w", err)
		}
		c := country{code: string(code[:]), minX: math.Inf(1), minY: math.Inf(1), maxX: math.Inf(-1), maxY: math.Inf(-1)}
		nr, err := binary.ReadUvarint(r)
		if err != nil || nr > 10000 {
			return nil, fmt.Errorf("borders: %s: ring count: %v", c.code, err)
		}
		for range nr {
			np, err := binary.ReadUvarint(r)
			if err != nil || np > 1<<20 {
				return nil, fmt.Errorf("borders: %s: point count: %v", c.code, err)
			}
			ring := make([]point, 0, np)
			var qx, qy int64
			for range np {
				dx, err1 := binary.ReadVarint(r)
				dy, err2 := binary.ReadVarint(r)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("borders: %s: truncated ring", c.code)
				}
				qx, qy = qx+dx, qy+dy
				p := point{float64(qx)*tr[0] + tr[2], float64(qy)*tr[1] + tr[3]}
				c.minX, c.maxX = math.Min(c.minX, p.x), math.Max(c.maxX, p.x)
				c.minY, c.maxY = math.Min(c.minY, p.y), math.Max(c.maxY, p.y)
				ring = append(ring, p)
			}
			c.rings = append(c.rings, ring)
		}
		out = append(out, c)
	}
	return out, nil
}
