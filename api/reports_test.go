package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/measure"
)

func TestCatchment(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	var rep api.CatchmentReport
	r := e.do("GET", "/api/v1/targets/k-root/catchment", e.read, "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	r.decode(t, &rep)
	got := map[string]string{}
	for _, p := range rep.Probes {
		got[p.Probe] = string(p.State) + ":" + p.Site
		if p.Lat == nil || *p.Lat != roundTo1(*p.Lat) {
			t.Errorf("probe %s lat %v is not blurred to 0.1°", p.Probe, p.Lat)
		}
	}
	want := map[string]string{"p-1": "site:fra", "p-2": "site:ams", "p-3": "unidentified:", "p-4": "unreachable:"}
	if !mapsEqual(got, want) {
		t.Errorf("probes: got %v, want %v", got, want)
	}
	if rep.Total.Probes != 4 || rep.Total.Unidentified != 1 || rep.Total.Unreachable != 1 || len(rep.Total.Sites) != 2 {
		t.Errorf("total: got %+v", rep.Total)
	}
	if rep.WindowSec != 900 || len(rep.Sites) != 2 {
		t.Errorf("window %d sites %d, want 900 and 2", rep.WindowSec, len(rep.Sites))
	}
	var keys []string
	for _, g := range rep.Groups {
		keys = append(keys, g.Key)
	}
	if !slices.Equal(keys, []string{"DE", "NL", "US"}) {
		t.Errorf("country groups: got %v", keys)
	}

	t.Run("region set", func(t *testing.T) {
		var rep api.CatchmentReport
		e.do("GET", "/api/v1/targets/k-root/catchment?group=region&regions="+url.QueryEscape("west=NL;central=DE"), e.read, "").decode(t, &rep)
		var keys []string
		for _, g := range rep.Groups {
			keys = append(keys, g.Key)
		}
		if !slices.Equal(keys, []string{"central", "unknown", "west"}) {
			t.Errorf("regions: got %v", keys)
		}
	})
	t.Run("af 6 is empty", func(t *testing.T) {
		var rep api.CatchmentReport
		e.do("GET", "/api/v1/targets/k-root/catchment?af=6", e.read, "").decode(t, &rep)
		if len(rep.Probes) != 0 || rep.Total.Probes != 0 || rep.Groups == nil || rep.Probes == nil {
			t.Errorf("af=6: got %+v", rep)
		}
	})
	t.Run("earlier time from changes", func(t *testing.T) {
		at := e.now.Add(-50 * time.Minute).Format(time.RFC3339)
		var rep api.CatchmentReport
		r := e.do("GET", "/api/v1/targets/k-root/catchment?window=1h&at="+at, e.read, "")
		r.decode(t, &rep)
		got := map[string]string{}
		for _, p := range rep.Probes {
			got[p.Probe] = string(p.State) + ":" + p.Site
		}
		// At now-50m p-1 had moved back to ams (now-50m exactly); p-2's
		// last result was at now-2h, outside the window.
		if !mapsEqual(got, map[string]string{"p-1": "site:ams"}) {
			t.Errorf("at %s: got %v (%s)", at, got, r.body)
		}
	})
	t.Run("csv", func(t *testing.T) {
		recs := csvRecords(t, e.do("GET", "/api/v1/targets/k-root/catchment?format=csv", e.read, ""))
		if !slices.Equal(recs[0], []string{"group", "probes", "unidentified", "unreachable", "site", "site_probes", "share", "median_rtt_ms"}) {
			t.Fatalf("header: %v", recs[0])
		}
		// all: ams, fra; DE: fra (p-4 unreachable); NL: ams; US: none.
		want := [][]string{{"all", "4", "1", "1", "ams", "1", "0.25", "13.000"}, {"all", "4", "1", "1", "fra", "1", "0.25", "21.000"},
			{"DE", "2", "0", "1", "fra", "1", "0.5", "21.000"}, {"NL", "1", "0", "0", "ams", "1", "1", "13.000"}, {"US", "1", "1", "0", "", "0", "0", ""}}
		if !slices.EqualFunc(recs[1:], want, slices.Equal) {
			t.Errorf("rows: got %v, want %v", recs[1:], want)
		}
	})
	t.Run("geojson", func(t *testing.T) {
		for _, path := range []string{"/api/v1/targets/k-root/catchment.geojson", "/api/v1/targets/k-root/catchment?format=geojson"} {
			r := e.do("GET", path, e.read, "")
			if ct := r.header.Get("Content-Type"); ct != "application/geo+json" {
				t.Errorf("%s: content type %q", path, ct)
			}
			var fc struct {
				Type     string
				Features []struct {
					Type     string
					Geometry struct {
						Type        string
						Coordinates []float64
					}
					Properties map[string]any
				}
			}
			r.decode(t, &fc)
			if fc.Type != "FeatureCollection" || len(fc.Features) != 4 {
				t.Fatalf("%s: got %s", path, r.body)
			}
			for _, f := range fc.Features {
				c := f.Geometry.Coordinates
				if f.Type != "Feature" || f.Geometry.Type != "Point" || len(c) != 2 || c[0] < -180 || c[0] > 180 || c[1] < -90 || c[1] > 90 {
					t.Errorf("bad feature %+v", f)
				}
				if f.Properties["probe"] == "p-1" && (f.Properties["site"] != "fra" || c[0] != 13.4 || c[1] != 52.5) {
					t.Errorf("p-1 feature: %+v (want lon,lat order)", f)
				}
			}
		}
	})
	t.Run("unmapped", func(t *testing.T) {
		var l struct{ Data []api.UnmappedIdentity }
		e.do("GET", "/api/v1/targets/k-root/unmapped", e.read, "").decode(t, &l)
		if len(l.Data) != 1 || l.Data[0].Identity != "weird.host" || l.Data[0].Probes != 1 {
			t.Errorf("unmapped: got %+v", l.Data)
		}
	})
}

func TestLatency(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	var rep api.LatencyReport
	r := e.do("GET", "/api/v1/targets/k-root/latency?from="+e.now.Add(-3*time.Hour).Format(time.RFC3339), e.read, "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	r.decode(t, &rep)
	sites := map[string]int{}
	for _, s := range rep.Sites {
		sites[s.Key] = s.Count
	}
	// p-1 reached ams and fra, p-2 ams; p-3 unidentified, p-4 unreachable.
	if !mapsEqual(sites, map[string]int{"ams": 2, "fra": 1, "?": 1, "unreachable": 0}) {
		t.Errorf("per-site counts: got %v (%s)", sites, r.body)
	}
	if rep.Total.Probes != 4 || rep.Total.Loss != 0.25 || rep.Total.P50 == nil {
		t.Errorf("total: %+v", rep.Total)
	}
	// p-3 (90 ms, US) is alone in its country: not inflated; lowering the
	// thresholds and grouping all of them in one region makes it so.
	if len(rep.Inflated) != 0 {
		t.Errorf("inflated with defaults: %+v", rep.Inflated)
	}
	var rep2 api.LatencyReport
	e.do("GET", "/api/v1/targets/k-root/latency?group=region&regions=all=DE,NL,US&from="+e.now.Add(-3*time.Hour).Format(time.RFC3339), e.read, "").decode(t, &rep2)
	if len(rep2.Groups) != 1 || rep2.Groups[0].Key != "all" {
		t.Errorf("region groups: %+v", rep2.Groups)
	}

	t.Run("csv", func(t *testing.T) {
		recs := csvRecords(t, e.do("GET", "/api/v1/targets/k-root/latency?format=csv&from="+e.now.Add(-3*time.Hour).Format(time.RFC3339), e.read, ""))
		if !slices.Equal(recs[0], []string{"dimension", "key", "probes", "count", "loss", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"}) {
			t.Fatalf("header %v", recs[0])
		}
		if recs[1][0] != "total" || recs[1][1] != "all" || recs[1][2] != "4" {
			t.Errorf("total row %v", recs[1])
		}
		for _, rec := range recs {
			if len(rec) != 10 {
				t.Errorf("row %v has %d columns", rec, len(rec))
			}
		}
	})
	t.Run("empty range", func(t *testing.T) {
		var rep api.LatencyReport
		r := e.do("GET", "/api/v1/targets/k-root/latency?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", e.read, "")
		r.decode(t, &rep)
		if r.status != 200 || rep.Total.Probes != 0 || rep.Sites == nil || rep.Inflated == nil {
			t.Errorf("empty: %d %s", r.status, r.body)
		}
	})
}

func TestChanges(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	from := url.QueryEscape(e.now.Add(-3 * time.Hour).Format(time.RFC3339))
	var all api.ChangeReport
	e.do("GET", "/api/v1/targets/k-root/changes?limit=1000&from="+from, e.read, "").decode(t, &all)
	// First observations of p-1..p-3 (p-4 was never reachable: no event),
	// then p-1 ams->fra->ams->fra.
	if len(all.Changes) != 6 {
		t.Fatalf("got %d changes: %+v", len(all.Changes), all.Changes)
	}
	sites := map[string][2]int{}
	for _, s := range all.Sites {
		sites[s.Site] = [2]int{s.Gained, s.Lost}
	}
	if !mapsEqual(sites, map[string][2]int{"ams": {1, 2}, "fra": {2, 1}}) {
		t.Errorf("site summary: %+v", all.Sites)
	}
	if len(all.Flapping) != 1 || all.Flapping[0].Probe != "p-1" || all.Flapping[0].Changes != 3 {
		t.Errorf("flapping: %+v", all.Flapping)
	}
	// Paging with limit=2 walks the same changes in the same order.
	var paged []api.Change
	cursor := ""
	for i := 0; i < 10; i++ {
		var page api.ChangeReport
		e.do("GET", "/api/v1/targets/k-root/changes?limit=2&from="+from+"&cursor="+cursor, e.read, "").decode(t, &page)
		paged = append(paged, page.Changes...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(paged) != len(all.Changes) {
		t.Fatalf("paged %d, want %d", len(paged), len(all.Changes))
	}
	for i := range paged {
		if paged[i].Probe != all.Changes[i].Probe || !paged[i].TS.Equal(all.Changes[i].TS) {
			t.Errorf("page item %d: %+v, want %+v", i, paged[i], all.Changes[i])
		}
	}
	t.Run("csv", func(t *testing.T) {
		recs := csvRecords(t, e.do("GET", "/api/v1/targets/k-root/changes?format=csv&from="+from, e.read, ""))
		if len(recs) != 7 || recs[0][0] != "ts" || recs[0][9] != "rtt_ms" {
			t.Fatalf("csv: %v", recs)
		}
		if recs[1][3] != "" || recs[5][4] != "ams" || recs[5][7] != "fra" {
			t.Errorf("csv rows: %v", recs[1:])
		}
	})
}

func TestResults(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	from := url.QueryEscape(e.now.Add(-3 * time.Hour).Format(time.RFC3339))
	var ids []string
	cursor := ""
	for i := 0; i < 10; i++ {
		var page struct {
			Data       []measure.Result
			NextCursor string `json:"next_cursor"`
		}
		r := e.do("GET", "/api/v1/results?target=k-root&limit=3&from="+from+"&cursor="+cursor, e.read, "")
		if r.status != 200 {
			t.Fatalf("status %d %s", r.status, r.body)
		}
		r.decode(t, &page)
		for _, res := range page.Data {
			ids = append(ids, res.ID.String())
			if err := res.Validate(e.now); err != nil {
				t.Errorf("result %s is not valid wire format: %v", res.ID, err)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(ids) != 8 || !slices.IsSorted(ids) {
		t.Errorf("paged ids: %d, sorted %v", len(ids), slices.IsSorted(ids))
	}

	for _, tc := range []struct{ name, path, accept string }{
		{"format param", "/api/v1/results?format=ndjson&target=k-root&from=" + from, ""},
		{"accept header", "/api/v1/results?target=k-root&from=" + from, "application/x-ndjson"},
	} {
		t.Run("ndjson "+tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, e.read, "", "Accept", tc.accept)
			if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Fatalf("content type %q", ct)
			}
			sc := bufio.NewScanner(bytes.NewReader(r.body))
			var got []string
			for sc.Scan() {
				var res measure.Result
				if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				got = append(got, res.ID.String())
			}
			if !slices.Equal(got, ids) {
				t.Errorf("ndjson ids differ from paged ids")
			}
		})
	}
	t.Run("probe and kind filter", func(t *testing.T) {
		var page struct{ Data []measure.Result }
		e.do("GET", "/api/v1/results?target=k-root&probe=p-1&kind=identity&from="+from, e.read, "").decode(t, &page)
		if len(page.Data) != 4 {
			t.Errorf("p-1 results: %d", len(page.Data))
		}
		e.do("GET", "/api/v1/results?target=k-root&kind=ping&from="+from, e.read, "").decode(t, &page)
		if len(page.Data) != 0 {
			t.Errorf("ping results: %d", len(page.Data))
		}
	})
	t.Run("atlas", func(t *testing.T) {
		// A bare array, as Atlas serves it; the cursor is a header.
		var page []map[string]any
		r := e.do("GET", "/api/v1/results?format=atlas&target=k-root&limit=2&from="+from, e.read, "")
		r.decode(t, &page)
		if len(page) != 2 || page[0]["type"] != "dns" || page[0]["fw"] != float64(5000) || r.header.Get("X-Next-Cursor") == "" {
			t.Errorf("atlas: %s (cursor %q)", r.body, r.header.Get("X-Next-Cursor"))
		}
	})
}

func TestProbes(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	tests := []struct {
		name, query string
		want        []string
	}{
		{"all", "", []string{"p-1", "p-2", "p-3", "p-4"}},
		{"country", "?country=de", []string{"p-1", "p-4"}},
		{"asn", "?asn=AS1136", []string{"p-2"}},
		{"connected", "?status=connected", []string{"p-1", "p-4"}},
		{"disconnected", "?status=disconnected", []string{"p-2"}},
		{"abandoned", "?status=abandoned", []string{"p-3"}},
		{"nothing", "?country=FR", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l struct{ Data []api.Probe }
			e.do("GET", "/api/v1/probes"+tc.query, e.read, "").decode(t, &l)
			got := []string{}
			for _, p := range l.Data {
				got = append(got, p.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	var got []string
	cursor := ""
	for i := 0; i < 10; i++ {
		var l struct {
			Data       []api.Probe
			NextCursor string `json:"next_cursor"`
		}
		e.do("GET", "/api/v1/probes?limit=3&cursor="+cursor, e.read, "").decode(t, &l)
		for _, p := range l.Data {
			got = append(got, p.ID)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if !slices.Equal(got, []string{"p-1", "p-2", "p-3", "p-4"}) {
		t.Errorf("paged: %v", got)
	}
	var p api.Probe
	e.do("GET", "/api/v1/probes/p-1", e.read, "").decode(t, &p)
	if p.Status != "connected" || p.ASN == nil || *p.ASN != 3320 || p.Country != "DE" || *p.Lat != 52.5 {
		t.Errorf("probe: %+v", p)
	}
}

func TestEmptyData(t *testing.T) {
	e := newEnv(t, api.Config{})
	for _, path := range []string{"/api/v1/targets", "/api/v1/probes", "/api/v1/admin/keys"} {
		r := e.do("GET", path, e.admin, "")
		if r.status != 200 || !strings.Contains(string(r.body), `"data":[`) {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	e.do("POST", "/api/v1/targets", e.admin, `{"name":"empty","addr6":"2001:db8::53"}`)
	for _, path := range []string{"/api/v1/targets/empty/catchment", "/api/v1/targets/empty/latency", "/api/v1/targets/empty/changes",
		"/api/v1/targets/empty/unmapped", "/api/v1/results?target=empty", "/api/v1/targets/empty/sites", "/api/v1/targets/empty/rules"} {
		r := e.do("GET", path, e.read, "")
		if r.status != 200 || strings.Contains(string(r.body), "null,") && !strings.Contains(string(r.body), `"af":null`) {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}

func roundTo1(f float64) float64 { return float64(int64(f*10+0.5*sign(f))) / 10 }

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
