package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
)

func TestCatchmentWithoutProbes(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	var full, agg map[string]json.RawMessage
	e.do("GET", "/api/v1/targets/k-root/catchment", e.read, "").decode(t, &full)
	r := e.do("GET", "/api/v1/targets/k-root/catchment?probes=false", e.read, "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	r.decode(t, &agg)
	if _, ok := agg["probes"]; ok {
		t.Errorf("probes=false still lists probes: %s", r.body)
	}
	for _, k := range []string{"target", "at", "total", "groups", "sites"} {
		if !bytes.Equal(full[k], agg[k]) {
			t.Errorf("%s: got %s, want %s as with probes", k, agg[k], full[k])
		}
	}
	if r := e.do("GET", "/api/v1/targets/k-root/catchment?probes=maybe", e.read, ""); r.status != 400 {
		t.Errorf("probes=maybe: got %d, want 400", r.status)
	}
}

func TestGzip(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	for _, path := range []string{"/api/v1/targets/k-root/catchment", "/api/v1/targets/k-root/catchment.geojson",
		"/api/v1/targets/k-root/latency", "/api/v1/targets/k-root/catchment?format=csv"} {
		plain := e.do("GET", path, e.read, "", "Accept-Encoding", "identity")
		if ce := plain.header.Get("Content-Encoding"); ce != "" {
			t.Errorf("%s without gzip: Content-Encoding %q", path, ce)
		}
		zipped := e.do("GET", path, e.read, "", "Accept-Encoding", "br;q=1.0, gzip;q=0.8")
		if ce := zipped.header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("%s: Content-Encoding %q, want gzip", path, ce)
		}
		if v := zipped.header.Get("Vary"); v != "Accept-Encoding" {
			t.Errorf("%s: Vary %q", path, v)
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped.body))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, plain.body) {
			t.Errorf("%s: gunzipped body differs:\n%s\nwant\n%s", path, body, plain.body)
		}
	}
	if r := e.do("GET", "/api/v1/targets/k-root/catchment", e.read, "", "Accept-Encoding", "gzip;q=0"); r.header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got Content-Encoding %q", r.header.Get("Content-Encoding"))
	}
}

func TestChangesOrderAndMoves(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	from := "&from=" + url.QueryEscape(e.now.Add(-3*time.Hour).Format(time.RFC3339))
	var asc, desc, moves api.ChangeReport
	e.do("GET", "/api/v1/targets/k-root/changes?limit=1000"+from, e.read, "").decode(t, &asc)
	e.do("GET", "/api/v1/targets/k-root/changes?order=desc&limit=1000"+from, e.read, "").decode(t, &desc)
	if len(desc.Changes) != len(asc.Changes) || len(asc.Changes) == 0 {
		t.Fatalf("desc %d changes, asc %d", len(desc.Changes), len(asc.Changes))
	}
	for i := range asc.Changes {
		a, d := asc.Changes[i], desc.Changes[len(desc.Changes)-1-i]
		if a.Probe != d.Probe || !a.TS.Equal(d.TS) {
			t.Errorf("desc[%d] = %+v, want %+v", len(desc.Changes)-1-i, d, a)
		}
	}
	// Paging newest first walks the same list.
	var paged []api.Change
	cursor := ""
	for i := 0; i < 10; i++ {
		var page api.ChangeReport
		e.do("GET", "/api/v1/targets/k-root/changes?order=desc&limit=2"+from+"&cursor="+cursor, e.read, "").decode(t, &page)
		paged = append(paged, page.Changes...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(paged) != len(desc.Changes) {
		t.Errorf("desc paged %d, want %d", len(paged), len(desc.Changes))
	}
	for i := range min(len(paged), len(desc.Changes)) {
		if paged[i].Probe != desc.Changes[i].Probe || !paged[i].TS.Equal(desc.Changes[i].TS) {
			t.Errorf("desc page item %d: %+v, want %+v", i, paged[i], desc.Changes[i])
		}
	}
	var firstPage api.ChangeReport
	e.do("GET", "/api/v1/targets/k-root/changes?order=desc&limit=2"+from, e.read, "").decode(t, &firstPage)
	if r := e.do("GET", "/api/v1/targets/k-root/changes?limit=2"+from+"&cursor="+firstPage.NextCursor, e.read, ""); r.status != 400 {
		t.Errorf("desc cursor used ascending: got %d, want 400", r.status)
	}

	for _, q := range []string{"moves_only=true", "kind=move"} {
		e.do("GET", "/api/v1/targets/k-root/changes?limit=1000&"+q+from, e.read, "").decode(t, &moves)
		// p-1 ams->fra->ams->fra; first observations of p-1..p-3 left out.
		if len(moves.Changes) != 3 {
			t.Errorf("%s: got %d changes, want 3: %+v", q, len(moves.Changes), moves.Changes)
		}
		for _, c := range moves.Changes {
			if c.FromState == nil {
				t.Errorf("%s: first observation listed: %+v", q, c)
			}
		}
	}
	recs := csvRecords(t, e.do("GET", "/api/v1/targets/k-root/changes?format=csv&order=desc&moves_only=true"+from, e.read, ""))
	if len(recs) != 4 || recs[1][0] < recs[3][0] {
		t.Errorf("csv desc moves: %v", recs)
	}
	if r := e.do("GET", "/api/v1/targets/k-root/changes?order=sideways", e.read, ""); r.status != 400 {
		t.Errorf("order=sideways: got %d, want 400", r.status)
	}
}

func TestChangeTimes(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	from := "from=" + url.QueryEscape(e.now.Add(-3*time.Hour).Format(time.RFC3339))
	var all, moves, hours api.ChangeTimes
	r := e.do("GET", "/api/v1/targets/k-root/changes/times?"+from, e.read, "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	r.decode(t, &all)
	// Changes at base (p-1, p-2 first seen), base+1h (p-1 to fra),
	// base+1h10m (p-1 back to ams), late (p-1 to fra, p-3 first seen).
	base, late := e.now.Add(-2*time.Hour), e.now.Add(-5*time.Minute)
	want := []api.ChangeTime{{TS: base.Truncate(time.Minute), Changes: 2}, {TS: base.Add(time.Hour).Truncate(time.Minute), Changes: 1, Moves: 1},
		{TS: base.Add(70 * time.Minute).Truncate(time.Minute), Changes: 1, Moves: 1}, {TS: late.Truncate(time.Minute), Changes: 2, Moves: 1}}
	eq := func(a, b api.ChangeTime) bool {
		return a.TS.Equal(b.TS) && a.Changes == b.Changes && a.Moves == b.Moves
	}
	if !slices.EqualFunc(all.Times, want, eq) || all.BucketSec != 60 || all.Truncated {
		t.Errorf("got %+v, want %+v", all, want)
	}
	e.do("GET", "/api/v1/targets/k-root/changes/times?moves_only=true&"+from, e.read, "").decode(t, &moves)
	if len(moves.Times) != 3 {
		t.Errorf("moves only: %+v", moves.Times)
	}
	e.do("GET", "/api/v1/targets/k-root/changes/times?bucket=24h&limit=1&"+from, e.read, "").decode(t, &hours)
	if len(hours.Times) != 1 || hours.BucketSec != 86400 || !hours.Times[0].TS.Equal(base.Truncate(24*time.Hour)) {
		t.Errorf("daily buckets: %+v", hours)
	}
	if base.Truncate(24*time.Hour).Equal(late.Truncate(24*time.Hour)) && (hours.Truncated || hours.Times[0].Changes != 6) {
		t.Errorf("one day: %+v, want 6 changes, not truncated", hours)
	}
	for _, bad := range []string{"bucket=30s", "bucket=90s", "from=2020-01-01T00:00:00Z&to=2019-01-01T00:00:00Z", "limit=0"} {
		if r := e.do("GET", "/api/v1/targets/k-root/changes/times?"+bad, e.read, ""); r.status != 400 {
			t.Errorf("%s: got %d, want 400", bad, r.status)
		}
	}
}

func TestLatencyByGroupSite(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	var rep api.LatencyReport
	e.do("GET", "/api/v1/targets/k-root/latency?inflation_ms=1&inflation_ratio=1.1&from="+url.QueryEscape(e.now.Add(-3*time.Hour).Format(time.RFC3339)), e.read, "").decode(t, &rep)
	got := map[string]int{}
	for _, c := range rep.ByGroupSite {
		got[c.Group+"/"+c.Site] = c.Count
	}
	// p-1 (DE) reached ams and fra, p-2 (NL) ams, p-3 (US) unmapped,
	// p-4 (DE) unreachable.
	want := map[string]int{"DE/ams": 1, "DE/fra": 1, "DE/unreachable": 0, "NL/ams": 1, "US/?": 1}
	if !mapsEqual(got, want) {
		t.Errorf("cells: got %v, want %v", got, want)
	}
	for _, c := range rep.ByGroupSite {
		// p-1: ams 10.5 ms mean, fra 20.5 ms: fra is inflated for DE.
		if inflated := c.Group == "DE" && c.Site == "fra"; c.Inflated != inflated {
			t.Errorf("cell %s/%s inflated %v, want %v (p50 %v)", c.Group, c.Site, c.Inflated, inflated, c.P50)
		}
	}
}

func TestOnChange(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, api.Config{OnChange: func() { calls.Add(1) }})
	steps := []struct {
		name, method, path, body string
		want                     int32 // calls after the step
	}{
		{"create", "POST", "/api/v1/targets", `{"name":"b-root","addr4":"198.18.0.1"}`, 1},
		{"create duplicate", "POST", "/api/v1/targets", `{"name":"b-root","addr4":"198.18.0.1"}`, 1},
		{"read", "GET", "/api/v1/targets/b-root", "", 1},
		{"update", "PATCH", "/api/v1/targets/b-root", `{"description":"B"}`, 2},
		{"update invalid", "PATCH", "/api/v1/targets/b-root", `{"addr6":"x"}`, 2},
		{"put site", "PUT", "/api/v1/targets/b-root/sites/lax", `{"name":"LA"}`, 3},
		{"rules", "PUT", "/api/v1/targets/b-root/rules", `{"data":[{"source":"any","match":"exact","pattern":"lax1","site":"lax"}]}`, 4},
		{"delete site", "DELETE", "/api/v1/targets/b-root/sites/lax", "", 5},
		{"delete missing site", "DELETE", "/api/v1/targets/b-root/sites/lax", "", 5},
		{"delete", "DELETE", "/api/v1/targets/b-root", "", 6},
	}
	for _, s := range steps {
		e.do(s.method, s.path, e.admin, s.body)
		if got := calls.Load(); got != s.want {
			t.Errorf("%s: OnChange called %d times in all, want %d", s.name, got, s.want)
		}
	}
}
