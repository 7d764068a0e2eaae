package api

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

// The catchment and latency reports are pinned by golden files
// (TestReportsGolden, reports_golden_test.go) over the synthetic rows
// generated here; the benchmarks below render the same reports.

// latencyOutput is getLatency's response body: JSON, or CSV with csvOut.
func latencyOutput(rows []LatencyRow, g catchment.Grouping, opt catchment.InflationOptions, af int, csvOut bool, w io.Writer) {
	rep := latencyReport(rows, opt, csvOut)
	rep.Target, rep.From, rep.To, rep.Kind = "k-root", time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC), time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC), "ping"
	if af != 0 {
		rep.AF = &af
	}
	if csvOut {
		rec := httptest.NewRecorder()
		writeLatencyCSV(rec, &rep)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	_ = writeLatencyReport(w, &rep)
}

// catchmentOutput is getCatchment's response body: JSON, or CSV with
// csvOut.
func catchmentOutput(rows []CatchmentRow, g catchment.Grouping, af int, withProbes, csvOut bool, w io.Writer) {
	total, groups := catchmentAggregates(rows, g)
	if csvOut {
		rec := httptest.NewRecorder()
		writeCatchmentCSV(rec, append([]catchment.Group{total}, groups...))
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	rep := CatchmentReport{Target: "k-root", At: benchAt, WindowSec: 900, Group: string(g.By),
		Sites: []Site{{Code: "ams", Name: "Amsterdam"}}, Total: total, Groups: groups}
	if af != 0 {
		rep.AF = &af
	}
	var probes *publishedProbes
	if withProbes {
		probes = &publishedProbes{rows: rows, blur: roundBlur}
	}
	_ = writeCatchmentReport(w, &rep, probes)
}

var benchAt = time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)

// rowOptions shapes synthetic store rows.
type rowOptions struct {
	probes       int
	countries    int     // distinct countries (some lower-case, one empty, one unknown to the continent table)
	asns         int     // distinct ASNs
	sites        int     // distinct sites
	unreachable  float64 // fraction of probes
	unidentified float64
	multi        float64 // fraction of probes with rows towards two sites (latency)
	dual         float64 // fraction of probes with a second address family (catchment)
	special      int     // 1: zero, -0, repeated RTTs, odd strings, nil RTTs with samples; 2: NaN and infinite RTTs too
	scatter      bool    // rows of one probe not adjacent (latency)
}

var (
	benchSites     = []string{"ams", "fra", "lhr", "iad", "lax", "nrt", "syd", "gru", "jnb", "sin", "mad", "ord"}
	benchCountries = []string{"NL", "DE", "US", "BR", "JP", "AU", "ZA", "IN", "FR", "GB", "SG", "CA", "AR", "KE", "nl", "", "XX", "se", "RU", "MX"}
	benchRegions   = map[string]string{"NL": "west", "DE": "west", "FR": "west", "GB": "west", "US": "americas", "BR": "americas",
		"CA": "americas", "AR": "americas", "JP": "asia\x00pacific", "AU": "asia\x00pacific", "IN": "unknown", "SG": "ä \"asia\"<&>"}
	benchRegionsPlain = map[string]string{"NL": "west", "DE": "west", "US": "americas", "JP": "asia", "AU": "asia", "IN": "unknown",
		"SG": "ä \"asia\"<&>", "ZA": "unknown\x01"}
)

// benchRows is the shape of a large deployment: 10,000 probes, 16
// countries, 800 ASNs, 8 sites, a few percent unreachable and
// unidentified, one probe in eight seeing two sites.
var benchRows = rowOptions{probes: 10000, countries: 16, asns: 800, sites: 8, unreachable: 0.03, unidentified: 0.03, multi: 0.12, dual: 0}

type probeMeta struct {
	id, country, continent string
	asn                    *int64
	lat, lon               *float64
	floor                  float64
}

func genProbe(r *rand.Rand, o rowOptions, i int) probeMeta {
	cc := benchCountries[r.IntN(min(o.countries, len(benchCountries)))]
	p := probeMeta{id: "p-" + strconv.Itoa(100000+i), country: cc, floor: 5 + float64(len(cc))*2 + float64(r.IntN(3))}
	if i%3 == 0 {
		p.id = "atlas:" + strconv.Itoa(1000+i)
	}
	if r.IntN(4) == 0 {
		p.continent = catchment.ContinentOf(cc)
	}
	if r.IntN(50) != 0 {
		asn := int64(64500 + r.IntN(o.asns))
		p.asn = &asn
	}
	if r.IntN(20) != 0 {
		lat, lon := 180*r.Float64()-90, 360*r.Float64()-180
		p.lat, p.lon = &lat, &lon
	}
	if o.special > 0 {
		switch r.IntN(30) {
		case 0:
			p.id = "p-\"odd\" ü"
		case 1:
			p.continent = "eu"
		case 2:
			p.asn = new(int64)
		}
	}
	return p
}

// genRTT returns a mean RTT of 5-300 ms above the probe's floor, so that
// most probes are inflated against the best of their group.
func genRTT(r *rand.Rand, o rowOptions, p probeMeta) *float64 {
	v := p.floor + 295*r.Float64()*r.Float64()
	if o.special > 0 {
		switch r.IntN(40) {
		case 0:
			if o.special > 1 && r.IntN(4) == 0 {
				v = math.NaN()
			}
		case 1:
			if o.special > 1 && r.IntN(4) == 0 {
				v = math.Inf(1)
			}
		case 2:
			v = 0
		case 3:
			v = math.Copysign(0, -1)
		case 4, 5, 6, 7:
			v = float64(r.IntN(4)) + 20
		case 8:
			return nil
		}
	}
	return &v
}

func genLatencyRows(r *rand.Rand, o rowOptions) []LatencyRow {
	rows := make([]LatencyRow, 0, o.probes+o.probes/4)
	for i := range o.probes {
		p := genProbe(r, o, i)
		row := LatencyRow{Probe: p.id, Country: p.country, Continent: p.continent, ASN: p.asn}
		switch u := r.Float64(); {
		case u < o.unreachable:
			row.Site = benchSites[r.IntN(o.sites)]
			if r.IntN(2) == 0 {
				row.Site = ""
			}
			rows = append(rows, row)
			continue
		case u < o.unreachable+o.unidentified:
		default:
			row.Site = benchSites[r.IntN(o.sites)]
		}
		n := 1
		if r.Float64() < o.multi {
			n = 2
		}
		for k := range n {
			row := row
			if k > 0 {
				row.Site = benchSites[r.IntN(o.sites)]
				if o.special > 0 && r.IntN(5) == 0 {
					row.Site = ""
				}
			}
			row.Samples = 1 + r.IntN(100)
			if o.special > 0 && r.IntN(10) == 0 {
				row.Samples = 0
			}
			row.RTT = genRTT(r, o, p)
			loss := r.Float64() / 10
			row.Loss, row.MinRTT = &loss, row.RTT
			rows = append(rows, row)
		}
	}
	if o.scatter {
		r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	}
	return rows
}

func genCatchmentRows(r *rand.Rand, o rowOptions) []CatchmentRow {
	rows := make([]CatchmentRow, 0, o.probes+o.probes/4)
	identities := []string{"", "weird.example", "host\"1", "ünï\x01"}
	for i := range o.probes {
		p := genProbe(r, o, i)
		afs := []int{4}
		if r.Float64() < o.dual {
			afs = append(afs, 6)
		}
		for _, af := range afs {
			obs := benchAt.Add(-time.Duration(r.IntN(900_000_000)) * time.Microsecond)
			row := CatchmentRow{Probe: p.id, AF: af, ObservedAt: obs, Since: obs.Add(-time.Duration(r.IntN(86400)) * time.Second),
				Lat: p.lat, Lon: p.lon, Country: p.country, Continent: p.continent, ASN: p.asn}
			switch u := r.Float64(); {
			case u < o.unreachable:
				row.State = catchment.StateUnreachable
			case u < o.unreachable+o.unidentified:
				row.State = catchment.StateUnidentified
				row.Identity = identities[r.IntN(len(identities))]
				row.RTT = genRTT(r, o, p)
			default:
				row.State = catchment.StateSite
				row.Site = benchSites[r.IntN(o.sites)]
				row.Identity = row.Site + strconv.Itoa(1+r.IntN(3)) + ".k-root"
				row.RTT = genRTT(r, o, p)
				if r.IntN(50) == 0 {
					row.RTT = nil
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

type reportCase struct {
	name       string
	rows       rowOptions
	seed       uint64
	empty      bool
	groups     []catchment.Grouping
	inflations []catchment.InflationOptions // thresholds; Grouping is set from the group
}

func reportGroupings() []catchment.Grouping {
	return []catchment.Grouping{{By: catchment.GroupCountry}, {By: catchment.GroupContinent}, {By: catchment.GroupASN},
		{By: catchment.GroupRegion, Regions: benchRegions}, {By: catchment.GroupRegion, Regions: benchRegionsPlain}}
}

func reportCases() []reportCase {
	small := rowOptions{probes: 60, countries: 6, asns: 5, sites: 3, unreachable: 0.1, unidentified: 0.1, multi: 0.3, dual: 0.3}
	return []reportCase{
		{name: "empty", empty: true},
		{name: "small", rows: small, seed: 1},
		{name: "odd", rows: rowOptions{probes: 300, countries: 20, asns: 12, sites: 12, unreachable: 0.05, unidentified: 0.05, multi: 0.3, dual: 0.2, special: 1}, seed: 2},
		{name: "nan", rows: rowOptions{probes: 300, countries: 20, asns: 12, sites: 12, unreachable: 0.05, unidentified: 0.05, multi: 0.3, dual: 0.2, special: 2}, seed: 2},
		{name: "scattered", rows: rowOptions{probes: 300, countries: 4, asns: 3, sites: 4, unreachable: 0.05, unidentified: 0.05, multi: 0.5, special: 1, scatter: true}, seed: 3},
		{name: "all-unreachable", rows: rowOptions{probes: 40, countries: 20, asns: 20, sites: 8, unreachable: 1}, seed: 4},
		{name: "unidentified-only", rows: rowOptions{probes: 40, countries: 20, asns: 20, sites: 8, unidentified: 1, multi: 0.5}, seed: 5},
		{name: "large-odd", rows: rowOptions{probes: 2500, countries: 3, asns: 4, sites: 2, unreachable: 0.02, unidentified: 0.02, multi: 0.2, dual: 0.2, special: 1}, seed: 8},
		{name: "large", rows: rowOptions{probes: 3000, countries: 16, asns: 800, sites: 8, unreachable: 0.03, unidentified: 0.03, multi: 0.12, dual: 0.1}, seed: 6},
		{name: "bench", rows: benchRows, seed: 7},
	}
}

// forEachReport calls fn with every (case, grouping, thresholds, af,
// format) combination: a name and how to render it.
func forEachReport(fn func(name string, render func(io.Writer))) {
	thresholds := []catchment.InflationOptions{{}, {MinExtraMS: 1, MinRatio: 1.01}, {MinExtraMS: 50, MinRatio: 3}}
	for _, tc := range reportCases() {
		var lrows []LatencyRow
		var crows []CatchmentRow
		if !tc.empty {
			lrows = genLatencyRows(rand.New(rand.NewPCG(tc.seed, 1)), tc.rows)
			crows = genCatchmentRows(rand.New(rand.NewPCG(tc.seed, 2)), tc.rows)
		}
		for _, g := range reportGroupings() {
			for ti, th := range thresholds {
				if tc.name == "bench" && ti > 0 {
					continue
				}
				opt := th
				opt.Grouping = g
				for _, af := range []int{0, 6} {
					for _, csvOut := range []bool{false, true} {
						name := fmt.Sprintf("latency/%s/%s%d/th%d/af%d/csv=%v", tc.name, g.By, len(g.Regions), ti, af, csvOut)
						fn(name, func(w io.Writer) { latencyOutput(lrows, g, opt, af, csvOut, w) })
					}
				}
			}
			for _, af := range []int{0, 4} {
				for _, mode := range []struct{ probes, csv bool }{{true, false}, {false, false}, {false, true}} {
					name := fmt.Sprintf("catchment/%s/%s%d/af%d/probes=%v/csv=%v", tc.name, g.By, len(g.Regions), af, mode.probes, mode.csv)
					fn(name, func(w io.Writer) { catchmentOutput(crows, g, af, mode.probes, mode.csv, w) })
				}
			}
		}
	}
}

// BenchmarkLatencyReport measures getLatency's work after the store has
// answered: 10,000 probes' rows (benchRows) to the JSON report, written to
// io.Discard.
func BenchmarkLatencyReport(b *testing.B) {
	rows := genLatencyRows(rand.New(rand.NewPCG(7, 1)), benchRows)
	for _, g := range []catchment.Grouping{{By: catchment.GroupCountry}, {By: catchment.GroupASN}} {
		opt := catchment.InflationOptions{Grouping: g}
		b.Run("group="+string(g.By), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				latencyOutput(rows, g, opt, 0, false, io.Discard)
			}
		})
	}
}

// BenchmarkCatchmentReport measures getCatchment's work after the store
// has answered: 10,000 probes' rows (benchRows) to the JSON report with
// its probes, written to io.Discard.
func BenchmarkCatchmentReport(b *testing.B) {
	rows := genCatchmentRows(rand.New(rand.NewPCG(7, 2)), benchRows)
	for _, g := range []catchment.Grouping{{By: catchment.GroupCountry}, {By: catchment.GroupASN}} {
		b.Run("group="+string(g.By), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				catchmentOutput(rows, g, 0, true, false, io.Discard)
			}
		})
	}
}
