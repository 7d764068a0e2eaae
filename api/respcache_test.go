package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
)

func TestReportCache(t *testing.T) {
	e := newEnv(t, api.Config{ReportCacheTTL: 2 * time.Second})
	e.seed()
	const path = "/api/v1/targets/k-root/catchment"
	first := e.do("GET", path, e.read, "")
	if first.status != 200 || first.header.Get("X-Anycatch-Cache") != "miss" {
		t.Fatalf("first: %d, cache %q: %s", first.status, first.header.Get("X-Anycatch-Cache"), first.body)
	}
	etag := first.header.Get("ETag")
	if !strings.HasPrefix(etag, `W/"`) {
		t.Fatalf("ETag %q, want a weak one", etag)
	}
	if ct := first.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// A change the API does not see (the collector's ingest) shows up only
	// once the entry expires.
	if _, err := e.db.Pool().Exec(context.Background(), `DELETE FROM catchment_latest WHERE probe_id = 'p-2'`); err != nil {
		t.Fatal(err)
	}
	hit := e.do("GET", path, e.read, "")
	if hit.status != 200 || hit.header.Get("X-Anycatch-Cache") != "hit" || !bytes.Equal(hit.body, first.body) || hit.header.Get("ETag") != etag {
		t.Fatalf("second: %d, cache %q, ETag %q, same body %v", hit.status, hit.header.Get("X-Anycatch-Cache"),
			hit.header.Get("ETag"), bytes.Equal(hit.body, first.body))
	}
	if ct := hit.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("hit Content-Type %q", ct)
	}
	zipped := e.do("GET", path, e.read, "", "Accept-Encoding", "gzip")
	if zipped.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip hit: Content-Encoding %q", zipped.header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped.body))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); !bytes.Equal(b, first.body) {
		t.Errorf("gzip hit body differs")
	}
	for _, enc := range []string{"identity", "gzip"} {
		nm := e.do("GET", path, e.read, "", "If-None-Match", `"x", `+etag, "Accept-Encoding", enc)
		if nm.status != 304 || len(nm.body) != 0 || nm.header.Get("Content-Encoding") != "" {
			t.Errorf("If-None-Match (%s): %d, %d bytes, Content-Encoding %q", enc, nm.status, len(nm.body), nm.header.Get("Content-Encoding"))
		}
	}
	if r := e.do("GET", path, e.read, "", "If-None-Match", `W/"other"`); r.status != 200 || !bytes.Equal(r.body, first.body) {
		t.Errorf("other ETag: %d", r.status)
	}
	// Other parameters and formats are other entries.
	if r := e.do("GET", path+"?format=csv", e.read, ""); r.header.Get("X-Anycatch-Cache") != "miss" || strings.HasPrefix(string(r.body), "{") {
		t.Errorf("csv: cache %q, body %.40s", r.header.Get("X-Anycatch-Cache"), r.body)
	}
	if r := e.do("GET", path, e.read, "", "Accept", "text/csv"); r.header.Get("X-Anycatch-Cache") != "miss" || strings.HasPrefix(string(r.body), "{") {
		t.Errorf("Accept text/csv: cache %q, body %.40s", r.header.Get("X-Anycatch-Cache"), r.body)
	}
	// After the TTL the report is fresh again, without p-2.
	e.now = e.now.Add(2 * time.Second)
	fresh := e.do("GET", path, e.read, "")
	if fresh.header.Get("X-Anycatch-Cache") != "miss" || bytes.Contains(fresh.body, []byte(`"p-2"`)) || fresh.header.Get("ETag") == etag {
		t.Errorf("after TTL: cache %q, ETag %q: %s", fresh.header.Get("X-Anycatch-Cache"), fresh.header.Get("ETag"), fresh.body)
	}
	if r := e.do("GET", path, e.read, ""); r.header.Get("X-Anycatch-Cache") != "hit" {
		t.Errorf("cache %q, want hit", r.header.Get("X-Anycatch-Cache"))
	}
	// A change through the API empties the cache.
	if r := e.do("PUT", "/api/v1/targets/k-root/sites/ams", e.admin, `{"name":"Amsterdam 2","lat":52.37,"lon":4.9}`); r.status != 200 {
		t.Fatalf("put site: %d %s", r.status, r.body)
	}
	if r := e.do("GET", path, e.read, ""); r.header.Get("X-Anycatch-Cache") != "miss" || !bytes.Contains(r.body, []byte("Amsterdam 2")) {
		t.Errorf("after a site change: cache %q", r.header.Get("X-Anycatch-Cache"))
	}
	// Latency and GeoJSON are cached too; errors are not.
	for _, p := range []string{"/api/v1/targets/k-root/latency", "/api/v1/targets/k-root/catchment.geojson"} {
		a, b := e.do("GET", p, e.read, ""), e.do("GET", p, e.read, "")
		if a.status != 200 || a.header.Get("X-Anycatch-Cache") != "miss" || b.header.Get("X-Anycatch-Cache") != "hit" || !bytes.Equal(a.body, b.body) ||
			a.header.Get("Content-Type") != b.header.Get("Content-Type") {
			t.Errorf("%s: %d, cache %q then %q", p, a.status, a.header.Get("X-Anycatch-Cache"), b.header.Get("X-Anycatch-Cache"))
		}
	}
	for range 2 {
		r := e.do("GET", "/api/v1/targets/nope/catchment", e.read, "")
		if r.status != 404 || r.header.Get("X-Anycatch-Cache") != "" || r.header.Get("ETag") != "" {
			t.Errorf("unknown target: %d, cache %q", r.status, r.header.Get("X-Anycatch-Cache"))
		}
	}
	// Authentication still applies to cached reports.
	if r := e.do("GET", path, "", ""); r.status != 401 {
		t.Errorf("no key: %d, want 401", r.status)
	}
}

func TestReportCacheOff(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	r := e.do("GET", "/api/v1/targets/k-root/catchment", e.read, "")
	if r.status != 200 || r.header.Get("ETag") != "" || r.header.Get("X-Anycatch-Cache") != "" {
		t.Errorf("without ReportCacheTTL: %d, ETag %q, cache %q", r.status, r.header.Get("ETag"), r.header.Get("X-Anycatch-Cache"))
	}
}
