//go:build ignore

// gen.go writes countries.bin.gz, the compact country boundaries package
// borders embeds, from world-atlas's countries-50m.json (Natural Earth
// 1:50m admin-0 countries, public domain; world-atlas is ISC) and Debian's
// iso-codes (numeric -> alpha-2):
//
//	npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
//	go run gen.go -in package/countries-50m.json -iso /usr/share/iso-codes/json/iso_3166-1.json
//
// Format (gzip of): "ACB1", float64 scale x, scale y, translate x,
// translate y (little endian), uvarint country count, then per country
// its two-letter code, uvarint ring count, and per ring uvarint point
// count and zigzag-varint deltas of the quantized x, y. Countries without
// an ISO code in the source (Kosovo, Northern Cyprus, Somaliland …) are
// left out: points there fall back to the nearest country.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"sort"
)

type topology struct {
	Transform struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]int `json:"arcs"`
	Objects struct {
		Countries struct {
			Geometries []struct {
				Type string          `json:"type"`
				ID   string          `json:"id"`
				Arcs json.RawMessage `json:"arcs"`
			} `json:"geometries"`
		} `json:"countries"`
	} `json:"objects"`
}

func main() {
	in := flag.String("in", "countries-50m.json", "world-atlas TopoJSON")
	iso := flag.String("iso", "/usr/share/iso-codes/json/iso_3166-1.json", "Debian iso-codes 3166-1 JSON")
	out := flag.String("out", "countries.bin.gz", "output")
	flag.Parse()
	var topo topology
	must(readJSON(*in, &topo))
	var codes struct {
		Entries []struct {
			Alpha2  string `json:"alpha_2"`
			Numeric string `json:"numeric"`
		} `json:"3166-1"`
	}
	must(readJSON(*iso, &codes))
	alpha := map[string]string{}
	for _, e := range codes.Entries {
		alpha[e.Numeric] = e.Alpha2
	}
	// Absolute quantized coordinates of every arc (TopoJSON stores deltas).
	arcs := make([][][2]int, len(topo.Arcs))
	for i, a := range topo.Arcs {
		x, y := 0, 0
		for _, p := range a {
			x, y = x+p[0], y+p[1]
			arcs[i] = append(arcs[i], [2]int{x, y})
		}
	}
	ring := func(idx []int) [][2]int {
		var pts [][2]int
		for _, i := range idx {
			var a [][2]int
			if i >= 0 {
				a = arcs[i]
			} else {
				src := arcs[^i]
				for j := len(src) - 1; j >= 0; j-- {
					a = append(a, src[j])
				}
			}
			if len(pts) > 0 {
				a = a[1:] // arcs share their end points
			}
			pts = append(pts, a...)
		}
		return pts
	}
	type country struct {
		code  string
		rings [][][2]int
	}
	byCode := map[string]*country{}
	for _, g := range topo.Objects.Countries.Geometries {
		code := alpha[g.ID]
		if code == "" {
			log.Printf("skip %q (no ISO code)", g.ID)
			continue
		}
		var polys [][][]int
		switch g.Type {
		case "Polygon":
			var p [][]int
			must(json.Unmarshal(g.Arcs, &p))
			polys = [][][]int{p}
		case "MultiPolygon":
			must(json.Unmarshal(g.Arcs, &polys))
		default:
			continue
		}
		c := byCode[code]
		if c == nil {
			c = &country{code: code}
			byCode[code] = c
		}
		for _, p := range polys {
			for _, r := range p {
				c.rings = append(c.rings, ring(r))
			}
		}
	}
	var list []*country
	for _, c := range byCode {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].code < list[j].code })

	var buf bytes.Buffer
	buf.WriteString("ACB1")
	for _, f := range []float64{topo.Transform.Scale[0], topo.Transform.Scale[1], topo.Transform.Translate[0], topo.Transform.Translate[1]} {
		binary.Write(&buf, binary.LittleEndian, math.Float64bits(f))
	}
	putU := func(v uint64) { buf.Write(binary.AppendUvarint(nil, v)) }
	putS := func(v int64) { buf.Write(binary.AppendVarint(nil, v)) }
	putU(uint64(len(list)))
	points := 0
	for _, c := range list {
		buf.WriteString(c.code)
		putU(uint64(len(c.rings)))
		for _, r := range c.rings {
			putU(uint64(len(r)))
			px, py := 0, 0
			for _, p := range r {
				putS(int64(p[0] - px))
				putS(int64(p[1] - py))
				px, py = p[0], p[1]
				points++
			}
		}
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(buf.Bytes())
	must(w.Close())
	must(os.WriteFile(*out, gz.Bytes(), 0o644))
	fmt.Printf("%d countries, %d points, %d bytes (%d before gzip)\n", len(list), points, gz.Len(), buf.Len())
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
