package collector

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/anycatch/anycatch/measure"
)

type ctxKey int

const (
	probeKey ctxKey = iota
	bodyKey
)

// probeFrom returns the authenticated probe id of a request.
func probeFrom(ctx context.Context) string { s, _ := ctx.Value(probeKey).(string); return s }

// bodyFrom returns the (verified) request body.
func bodyFrom(ctx context.Context) []byte { b, _ := ctx.Value(bodyKey).([]byte); return b }

// authed wraps h with signed-request authentication. Everything the
// headers alone can refuse is refused before a byte of the body is read:
// a missing probe id, a timestamp outside the skew window, a malformed
// nonce, an unknown probe. Only then is the body read, bounded by limit,
// by a deadline that grows with its size, and by a cap on concurrent body
// reads (globally and per probe id), before the signature (which covers
// it) is checked; h finds the body with bodyFrom. A valid signature by a
// key of another role than the endpoint's is refused with 403, like a
// disabled probe's.
func (c *Collector) authed(role Role, limit int64, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(measure.HeaderProbe)
		if id == "" || len(id) > 64 {
			refuseUnread(w)
			c.authFail(w, r, "missing or malformed "+measure.HeaderProbe)
			return
		}
		if _, err := measure.CheckHeaders(r.Header, c.cfg.Now()); err != nil {
			refuseUnread(w)
			msg := "unknown probe or bad signature"
			switch {
			case strings.Contains(err.Error(), "timestamp"):
				msg = err.Error()
			case strings.Contains(err.Error(), measure.HeaderNonce):
				msg = err.Error() + " (probes older than request signing v2 must be upgraded)"
			}
			c.authFail(w, r, msg)
			return
		}
		if r.ContentLength > limit {
			refuseUnread(w)
			writeError(w, measure.CodeTooLarge, "request body larger than the limit")
			return
		}
		key, err := c.keys.get(r.Context(), c.store, id, c.cfg.Now())
		switch {
		case errors.Is(err, ErrUnknownProbe):
			refuseUnread(w)
			c.authFail(w, r, "unknown probe or bad signature")
			return
		case err != nil:
			refuseUnread(w)
			c.log.Error("probe key lookup", "err", err)
			writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "probe database unavailable; retry later")
			return
		}
		release, ok := c.bodyReads.acquire(id)
		if !ok {
			refuseUnread(w)
			c.metrics.authFailures.WithLabelValues("busy").Inc()
			writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "too many uploads in progress; retry later")
			return
		}
		body, err := readBody(w, r, limit)
		release()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, measure.CodeTooLarge, "request body larger than the limit")
				return
			}
			writeError(w, measure.CodeInvalid, "read body: "+err.Error())
			return
		}
		if err := c.verifier.Verify(key.PublicKey, r.Method, measure.RequestTarget(r.URL), r.Header, body, c.cfg.Now()); err != nil {
			switch {
			case errors.Is(err, measure.ErrTooManyNonces):
				c.metrics.authFailures.WithLabelValues("too_many_requests").Inc()
				c.log.Warn("probe auth: probe over its signed-request bound", "probe", id)
				writeRetry(w, c.cfg.RetryAfter, measure.CodeRateLimited, err.Error())
				return
			case errors.Is(err, measure.ErrReplayCacheFull):
				c.log.Warn("probe auth: replay cache full", "probe", id)
				writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, err.Error())
				return
			}
			// Same message for unknown probes and bad signatures, except
			// the replay hint, which follows a valid signature and helps
			// honest probes.
			msg := "unknown probe or bad signature"
			if errors.Is(err, measure.ErrReplay) {
				msg = err.Error()
			}
			c.authFail(w, r, msg)
			return
		}
		if key.Disabled {
			c.metrics.authFailures.WithLabelValues("disabled").Inc()
			writeError(w, measure.CodeForbidden, "probe is disabled")
			return
		}
		if key.Role != role {
			c.metrics.authFailures.WithLabelValues("role").Inc()
			writeError(w, measure.CodeForbidden, roleRefusal(role))
			return
		}
		ctx := context.WithValue(r.Context(), probeKey, id)
		ctx = context.WithValue(ctx, bodyKey, body)
		h(w, r.WithContext(ctx))
	})
}

// roleRefusal is the answer to a key of the wrong role on an endpoint of
// role.
func roleRefusal(role Role) string {
	if role == RoleSite {
		return "not a census site agent"
	}
	return "a census site agent's key cannot use probe endpoints"
}

func (c *Collector) authFail(w http.ResponseWriter, r *http.Request, msg string) {
	c.metrics.authFailures.WithLabelValues("signature").Inc()
	c.log.Debug("probe auth failed", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", msg)
	writeError(w, measure.CodeUnauthorized, msg)
}

// refuseUnread prepares the answer to a request whose body will not be
// read: the connection closes after the answer, and net/http's drain of
// the unread body (up to 256 KiB) gets a second, so a client trickling a
// body cannot hold the connection.
func refuseUnread(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Second))
}

// Body reads are bounded in time by a deadline of bodyBaseTime plus the
// time the body takes at bodyMinRate: a client slower than that (a
// slowloris trickling an upload) is cut off rather than holding a
// connection and its buffer.
const (
	bodyBaseTime = 10 * time.Second
	bodyMinRate  = 64 << 10 // bytes per second
)

func bodyDeadline(contentLength, limit int64) time.Duration {
	n := contentLength
	if n < 0 || n > limit {
		n = limit // unknown length (chunked): budget for the largest body
	}
	return bodyBaseTime + time.Duration(n)*time.Second/bodyMinRate
}

// readBody reads r's body, at most limit bytes, within bodyDeadline. The
// buffer grows with the bytes received, never from the declared
// Content-Length, so a client that declares 8 MiB and sends one byte
// costs one byte.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	rc := http.NewResponseController(w)
	// Not every ResponseWriter supports deadlines (httptest recorders);
	// the listener's timeouts still apply then.
	if err := rc.SetReadDeadline(time.Now().Add(bodyDeadline(r.ContentLength, limit))); err == nil {
		defer rc.SetReadDeadline(time.Time{})
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	var buf bytes.Buffer
	_, err := buf.ReadFrom(rd)
	return buf.Bytes(), err
}

// bodyGate caps concurrent body reads: total across all probes and per
// probe id, so neither a crowd of connections nor one probe id (known to
// an attacker without its key) can tie up memory and connections while
// their bodies trickle in. Zero values mean the defaults.
type bodyGate struct {
	max, perProbe int
	mu            sync.Mutex
	total         int
	by            map[string]int
}

const (
	defaultBodyReads         = 64
	defaultBodyReadsPerProbe = 4
)

// acquire takes a slot for probe id, or reports false at once when none
// is free; release gives it back.
func (g *bodyGate) acquire(id string) (release func(), ok bool) {
	maxT, maxP := g.max, g.perProbe
	if maxT <= 0 {
		maxT = defaultBodyReads
	}
	if maxP <= 0 {
		maxP = defaultBodyReadsPerProbe
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= maxT || g.by[id] >= maxP {
		return nil, false
	}
	if g.by == nil {
		g.by = make(map[string]int)
	}
	g.total++
	g.by[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.total--
			if g.by[id]--; g.by[id] <= 0 {
				delete(g.by, id)
			}
		})
	}, true
}

// keyCache caches probe keys for a short TTL so that every upload does not
// cost a database round trip; disabling a probe takes effect within ttl.
type keyCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedKey
}

type cachedKey struct {
	key     ProbeKey
	unknown bool
	until   time.Time
}

const maxCachedKeys = 100_000

func (kc *keyCache) get(ctx context.Context, s ProbeStore, id string, now time.Time) (ProbeKey, error) {
	kc.mu.Lock()
	e, ok := kc.m[id]
	kc.mu.Unlock()
	if ok && now.Before(e.until) {
		if e.unknown {
			return ProbeKey{}, ErrUnknownProbe
		}
		return e.key, nil
	}
	k, err := s.ProbeKey(ctx, id)
	unknown := errors.Is(err, ErrUnknownProbe)
	if err != nil && !unknown {
		return ProbeKey{}, err
	}
	ttl := kc.ttl
	if unknown {
		ttl = time.Second // a new enrollment must become usable quickly
	}
	kc.mu.Lock()
	if kc.m == nil || len(kc.m) >= maxCachedKeys {
		kc.m = make(map[string]cachedKey) // crude bound; refilled on demand
	}
	kc.m[id] = cachedKey{key: k, unknown: unknown, until: now.Add(ttl)}
	kc.mu.Unlock()
	return k, err
}

func (kc *keyCache) forget(id string) {
	kc.mu.Lock()
	delete(kc.m, id)
	kc.mu.Unlock()
}

// clientAddr is [measure.ClientAddr]: the API's anonymous rate limit
// keys on the same address.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	return measure.ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted)
}

// ParseTrustedProxies is [measure.ParseTrustedProxies].
func ParseTrustedProxies(s string) ([]netip.Prefix, error) { return measure.ParseTrustedProxies(s) }
