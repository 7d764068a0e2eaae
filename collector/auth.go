package collector

import (
	"bytes"
	"context"
	"errors"
	"net"
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

// authed wraps h with signed-request authentication. The body is read,
// bounded by limit, before the signature is checked (the signature covers
// it); h finds it with bodyFrom.
func (c *Collector) authed(limit int64, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(measure.HeaderProbe)
		if id == "" || len(id) > 64 {
			c.authFail(w, r, "missing or malformed "+measure.HeaderProbe)
			return
		}
		body, err := readBody(w, r, limit)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, "too_large", "request body larger than the limit")
				return
			}
			writeError(w, http.StatusBadRequest, "invalid", "read body: "+err.Error())
			return
		}
		key, err := c.keys.get(r.Context(), c.store, id, c.cfg.Now())
		switch {
		case errors.Is(err, ErrUnknownProbe):
			c.authFail(w, r, "unknown probe or bad signature")
			return
		case err != nil:
			c.log.Error("probe key lookup", "err", err)
			writeRetry(w, http.StatusServiceUnavailable, c.cfg.RetryAfter, "unavailable", "probe database unavailable; retry later")
			return
		}
		if err := c.verifier.Verify(key.PublicKey, r.Method, measure.RequestTarget(r.URL), r.Header, body, c.cfg.Now()); err != nil {
			switch {
			case errors.Is(err, measure.ErrTooManyNonces):
				c.metrics.authFailures.WithLabelValues("too_many_requests").Inc()
				c.log.Warn("probe auth: probe over its signed-request bound", "probe", id)
				writeRetry(w, http.StatusTooManyRequests, c.cfg.RetryAfter, "overloaded", err.Error())
				return
			case errors.Is(err, measure.ErrReplayCacheFull):
				c.log.Warn("probe auth: replay cache full", "probe", id)
				writeRetry(w, http.StatusServiceUnavailable, c.cfg.RetryAfter, "unavailable", err.Error())
				return
			}
			// Same message for unknown probes and bad signatures, except
			// the clock, replay and nonce hints, which help honest probes
			// and leak nothing (the first two follow a valid signature,
			// the last is about the request's own headers).
			msg := "unknown probe or bad signature"
			switch {
			case strings.Contains(err.Error(), "timestamp") || errors.Is(err, measure.ErrReplay):
				msg = err.Error()
			case strings.Contains(err.Error(), measure.HeaderNonce):
				msg = err.Error() + " (probes older than request signing v2 must be upgraded)"
			}
			c.authFail(w, r, msg)
			return
		}
		if key.Disabled {
			c.metrics.authFailures.WithLabelValues("disabled").Inc()
			writeError(w, http.StatusForbidden, "forbidden", "probe is disabled")
			return
		}
		ctx := context.WithValue(r.Context(), probeKey, id)
		ctx = context.WithValue(ctx, bodyKey, body)
		h(w, r.WithContext(ctx))
	})
}

func (c *Collector) authFail(w http.ResponseWriter, r *http.Request, msg string) {
	c.metrics.authFailures.WithLabelValues("signature").Inc()
	c.log.Debug("probe auth failed", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", msg)
	writeError(w, http.StatusUnauthorized, "unauthorized", msg)
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(rd)
	return buf.Bytes(), err
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

// clientAddr returns the address a request came from: the peer address, or
// when the peer is a trusted proxy, the right-most X-Forwarded-For address
// that is not itself a trusted proxy.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // malformed chain: trust only what we saw
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a
		}
	}
	return peer
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies parses a comma-separated CIDR list (single addresses
// allowed) for Config.TrustedProxies.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, errors.New("trusted proxies: " + err.Error())
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, errors.New("trusted proxies: " + err.Error())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
