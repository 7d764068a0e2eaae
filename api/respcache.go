package api

import (
	"bytes"
	"hash/crc64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Report responses (catchment, GeoJSON, latency) can be cached for a few
// seconds (Config.ReportCacheTTL): dashboards poll the same report, and at
// 10,000 probes each cold request costs tens of milliseconds of SQL,
// decoding and JSON. A cached response is replayed byte for byte (gzip is
// applied afterwards, per request) with a weak ETag, and a request whose
// If-None-Match matches gets 304 without a body. The cache is per Server,
// keyed by path, query string and Accept header (which chooses the
// format), and holds successful responses only. Any change made through
// the API (targets, sites, rules) empties it; new results show up after at
// most the TTL. A report relative to "now" (no at/to) is as of when it was
// cached, at most the TTL ago.
const (
	reportCacheMaxEntries = 256
	reportCacheMaxBody    = 16 << 20
)

var crcTable = crc64.MakeTable(crc64.ECMA)

type cachedResponse struct {
	body        []byte
	contentType string
	etag        string
	expires     time.Time
}

type respCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*cachedResponse
	flights map[string]*flight // renders in progress, by key
	gen     uint64             // bumped by clear: a render begun before is not stored
}

// flight is one render of a missing entry; concurrent requests for the same
// key wait for it instead of rendering the same report again.
type flight struct {
	done chan struct{}
	e    *cachedResponse // nil if the response was not cacheable
}

func newRespCache(ttl time.Duration, now func() time.Time) *respCache {
	if ttl <= 0 {
		return nil
	}
	return &respCache{ttl: ttl, now: now, entries: map[string]*cachedResponse{}, flights: map[string]*flight{}}
}

// clear drops every entry (after a change through the API).
func (c *respCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.entries)
	c.gen++
	c.mu.Unlock()
}

// begin returns the live entry for key; else the render in progress to
// wait for (lead false); else a new flight the caller must render and
// finish (lead true), with the size of the expired entry as a buffer size
// hint (expired entries stay until replaced or evicted: growing a buffer
// to megabytes by doubling costs several milliseconds).
func (c *respCache) begin(key string) (e *cachedResponse, f *flight, lead bool, hint int, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e = c.entries[key]; e != nil {
		if c.now().Before(e.expires) {
			return e, nil, false, 0, 0
		}
		hint = len(e.body)
	}
	if f = c.flights[key]; f != nil {
		return nil, f, false, 0, 0
	}
	f = &flight{done: make(chan struct{})}
	c.flights[key] = f
	return nil, f, true, hint, c.gen
}

// finish ends a flight, storing e (when not nil and no clear happened
// since begin) and waking its waiters.
func (c *respCache) finish(key string, f *flight, e *cachedResponse, gen uint64) {
	c.mu.Lock()
	if e != nil && gen == c.gen {
		c.put(key, e)
	}
	delete(c.flights, key)
	c.mu.Unlock()
	f.e = e
	close(f.done)
}

// put stores e; c.mu is held.
func (c *respCache) put(key string, e *cachedResponse) {
	if len(c.entries) >= reportCacheMaxEntries {
		now := c.now()
		for k, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, k)
			}
		}
		// Still full: drop arbitrary entries (they expire within the
		// TTL anyway).
		for k := range c.entries {
			if len(c.entries) < reportCacheMaxEntries {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = e
}

// cached wraps a report handler with the response cache; without one
// (ReportCacheTTL 0) it returns h unchanged and responses stream as before.
func (s *Server) cached(h http.HandlerFunc) http.HandlerFunc {
	c := s.cache
	if c == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			h(w, r)
			return
		}
		key := r.URL.Path + "\x00" + r.URL.RawQuery + "\x00" + r.Header.Get("Accept")
		e, f, lead, hint, gen := c.begin(key)
		if e == nil && !lead {
			select {
			case <-f.done:
				e = f.e
			case <-r.Context().Done():
				return
			}
			if e == nil { // the other render failed or was too big: render alone
				h(w, r)
				return
			}
		}
		if e != nil {
			w.Header().Set("X-Anycatch-Cache", "hit")
			writeCached(w, r, e)
			return
		}
		// Waiters are woken as soon as the response is rendered (not after
		// it is written to this client), and on a panic.
		finished := false
		defer func() {
			if !finished {
				c.finish(key, f, nil, gen)
			}
		}()
		rec := &recordingWriter{header: http.Header{}, status: http.StatusOK}
		rec.buf.Grow(min(hint+hint/8, reportCacheMaxBody))
		h(rec, r)
		if rec.status != http.StatusOK || rec.tooBig {
			finished = true
			c.finish(key, f, nil, gen)
			// Not cacheable: pass it on as the handler wrote it.
			copyHeader(w.Header(), rec.header)
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.buf.Bytes())
			return
		}
		// CRC-64 of the body (GB/s, table-driven) and its length: a weak
		// validator, the same in every process serving the same bytes.
		sum := crc64.Checksum(rec.buf.Bytes(), crcTable)
		e = &cachedResponse{body: rec.buf.Bytes(), contentType: rec.header.Get("Content-Type"),
			etag: `W/"` + strconv.FormatUint(sum, 36) + "-" + strconv.Itoa(rec.buf.Len()) + `"`, expires: c.now().Add(c.ttl)}
		finished = true
		c.finish(key, f, e, gen)
		w.Header().Set("X-Anycatch-Cache", "miss")
		writeCached(w, r, e)
	}
}

func writeCached(w http.ResponseWriter, r *http.Request, e *cachedResponse) {
	h := w.Header()
	h.Set("ETag", e.etag)
	if etagMatches(r.Header.Get("If-None-Match"), e.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if e.contentType != "" {
		h.Set("Content-Type", e.contentType)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}

// etagMatches implements If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// recordingWriter buffers a handler's response for the cache.
type recordingWriter struct {
	header      http.Header
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	tooBig      bool
}

func (w *recordingWriter) Header() http.Header { return w.header }

func (w *recordingWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.status = status
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	if w.buf.Len()+len(p) > reportCacheMaxBody {
		w.tooBig = true
	}
	return w.buf.Write(p)
}
