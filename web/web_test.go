package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/web"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// bundle returns the hashed JS and CSS paths that index.html references.
func bundle(t *testing.T, h http.Handler) (js, css string) {
	t.Helper()
	body := get(t, h, "/").Body.String()
	m := regexp.MustCompile(`src="(/app-[A-Z0-9]{8}\.js)"`).FindStringSubmatch(body)
	c := regexp.MustCompile(`href="(/app-[A-Z0-9]{8}\.css)"`).FindStringSubmatch(body)
	if m == nil || c == nil {
		t.Fatalf("index.html does not reference a hashed bundle:\n%s", body)
	}
	return m[1], c[1]
}

func TestHandler(t *testing.T) {
	h := web.Handler()
	js, css := bundle(t, h)
	tests := []struct {
		name, path  string
		status      int
		ctype       string
		cache       string
		wantInBody  string
		notFoundish bool
	}{
		{"index", "/", 200, "text/html; charset=utf-8", "no-cache", `<div id="app">`, false},
		{"spa route", "/map/k-root", 200, "text/html; charset=utf-8", "no-cache", `<div id="app">`, false},
		{"js bundle", js, 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "", false},
		{"css bundle", css, 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable", "", false},
		{"licences", "/THIRD_PARTY_LICENSES.txt", 200, "text/plain; charset=utf-8", "no-cache", "world-atlas", false},
		{"stale bundle", "/app-AAAAAAAA.js", 404, "", "", "", true},
		{"unknown api path", "/api/v2/nothing", 404, "", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, h, tc.path)
			if rec.Code != tc.status {
				t.Fatalf("GET %s: got status %d, want %d", tc.path, rec.Code, tc.status)
			}
			if tc.notFoundish {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type: got %q, want %q", got, tc.ctype)
			}
			if got := rec.Header().Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control: got %q, want %q", got, tc.cache)
			}
			if rec.Header().Get("ETag") == "" {
				t.Error("no ETag")
			}
			if !strings.Contains(rec.Body.String(), tc.wantInBody) {
				t.Errorf("body does not contain %q", tc.wantInBody)
			}
		})
	}
}

func TestHandlerConditionalAndGzip(t *testing.T) {
	h := web.Handler()
	js, _ := bundle(t, h)
	plain := get(t, h, js)
	etag := plain.Header().Get("ETag")
	if rec := get(t, h, js, "If-None-Match", etag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("If-None-Match %s: got %d with %d bytes, want 304 and no body", etag, rec.Code, rec.Body.Len())
	}
	gz := get(t, h, js, "Accept-Encoding", "gzip, br")
	if gz.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Accept-Encoding gzip: got Content-Encoding %q", gz.Header().Get("Content-Encoding"))
	}
	if !strings.Contains(gz.Header().Get("Vary"), "Accept-Encoding") {
		t.Errorf("gzip response lacks Vary: Accept-Encoding")
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, plain.Body.Bytes()) {
		t.Errorf("gunzipped body differs from the plain one (%d vs %d bytes)", len(body), plain.Body.Len())
	}
	if rec := get(t, h, js, "Accept-Encoding", "gzip;q=0"); rec.Header().Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 still got gzip")
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: got %d, want 405", rec.Code)
	}
	idx := get(t, h, "/")
	if csp := idx.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("index.html CSP %q does not pin connections to the origin", csp)
	}
}

// TestBundleIsSelfContained guards the offline promise: the built files
// must not reference any other origin.
func TestBundleIsSelfContained(t *testing.T) {
	h := web.Handler()
	js, css := bundle(t, h)
	for _, p := range []string{"/", js, css} {
		body := get(t, h, p).Body.String()
		for _, bad := range []string{"//fonts.", "cdn.", "unpkg.com", "jsdelivr", "tile.openstreetmap", "@import url(http"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s references %q", p, bad)
			}
		}
	}
}
