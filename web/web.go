// Package web serves the anycatch browser UI: a single-page application
// built from web/ui into web/dist and embedded in the binary, so serving it
// needs neither Node nor files on disk.
//
// [Handler] serves the assets with explicit content types, long-lived
// immutable caching for content-hashed bundle files, ETags for everything
// else, gzip when the client accepts it, and index.html for any other path
// so that deep links work. The API is not served here: mount the api
// package's server at /api/ next to this handler.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
)

//go:embed dist
var dist embed.FS

// hashedName matches the bundle files esbuild names after their content
// (app-ONSMVOUF.js); they never change, so browsers may cache them forever.
var hashedName = regexp.MustCompile(`-[A-Z0-9]{8}\.(js|css)$`)

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// The UI talks only to its own origin; the policy makes the browser refuse
// anything else (tiles, fonts, CDNs), which also keeps it usable offline.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
	"script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

type asset struct {
	body  []byte
	gz    []byte // nil when compression does not pay
	ctype string
	etag  string
	cache string
}

type handler struct {
	assets map[string]*asset // by URL path
	index  *asset
}

// Handler returns the UI handler. Mount it at "/".
func Handler() http.Handler {
	h := &handler{assets: map[string]*asset{}}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "dist")
		h.assets[name] = newAsset(name, body)
		return nil
	})
	if err != nil {
		panic("web: read embedded assets: " + err.Error()) // the embed is fixed at build time
	}
	h.index = h.assets["/index.html"]
	if h.index == nil {
		panic("web: embedded dist has no index.html; run web/ui/build.sh")
	}
	return h
}

func newAsset(name string, body []byte) *asset {
	sum := sha256.Sum256(body)
	a := &asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	a.ctype = contentTypes[path.Ext(name)]
	if a.ctype == "" {
		a.ctype = "application/octet-stream"
	}
	if hashedName.MatchString(name) {
		a.cache = "public, max-age=31536000, immutable"
	} else {
		a.cache = "no-cache" // revalidate with the ETag
	}
	if len(body) > 1024 && !strings.HasPrefix(a.ctype, "image/png") {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		if b.Len() < len(body)*9/10 {
			a.gz = b.Bytes()
		}
	}
	return a
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	a := h.assets[p]
	if a == nil {
		// Unknown API paths must not turn into the UI; the API is served
		// by its own handler and answers its own 404s.
		if strings.HasPrefix(p, "/api/") || p == "/api" {
			http.NotFound(w, r)
			return
		}
		// A missing file (a name with an extension, e.g. a stale bundle)
		// is a 404; everything else is a route of the single-page app.
		if path.Ext(p) != "" {
			http.NotFound(w, r)
			return
		}
		a = h.index
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("Cache-Control", a.cache)
	hd.Set("ETag", a.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if a == h.index {
		hd.Set("Content-Security-Policy", csp)
	}
	if a.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
