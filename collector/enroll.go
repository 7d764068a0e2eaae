package collector

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// tokenPrefix marks enrollment tokens so they are recognisable in configs
// and secret scanners.
const tokenPrefix = "act_"

// Tokens is the admin-facing enrollment token service (the CLI and the
// admin API use it). Secrets are generated here, shown once, and stored
// only as SHA-256 hashes.
type Tokens struct {
	Store TokenStore
	Now   func() time.Time // nil: time.Now
}

// TokenOptions says how a new token may be used.
type TokenOptions struct {
	Name    string        // free text
	MaxUses int           // 0: unlimited; 1: single-use
	TTL     time.Duration // 0: never expires
}

// Create makes a token and returns its description and secret. The secret
// cannot be recovered later.
func (t Tokens) Create(ctx context.Context, o TokenOptions) (Token, string, error) {
	if o.MaxUses < 0 {
		return Token{}, "", errors.New("create token: max uses must be 0 (unlimited) or more")
	}
	if o.TTL < 0 {
		return Token{}, "", errors.New("create token: expiry must be in the future")
	}
	if len(o.Name) > 200 {
		return Token{}, "", errors.New("create token: name longer than 200 bytes")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Token{}, "", fmt.Errorf("create token: %w", err)
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	nt := NewToken{Name: o.Name, Hash: HashToken(secret), MaxUses: o.MaxUses}
	if o.TTL > 0 {
		exp := t.now().Add(o.TTL).UTC()
		nt.ExpiresAt = &exp
	}
	tok, err := t.Store.CreateToken(ctx, nt)
	if err != nil {
		return Token{}, "", fmt.Errorf("create token: %w", err)
	}
	return tok, secret, nil
}

// List returns every token (without secrets).
func (t Tokens) List(ctx context.Context) ([]Token, error) {
	ts, err := t.Store.ListTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// Revoke revokes token id; ErrUnknownToken if there is none. Probes
// already enrolled with it keep working (disable them separately).
func (t Tokens) Revoke(ctx context.Context, id int64) error {
	if err := t.Store.RevokeToken(ctx, id, t.now()); err != nil {
		return fmt.Errorf("revoke token %d: %w", id, err)
	}
	return nil
}

func (t Tokens) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// HashToken is how token secrets are stored and looked up.
func HashToken(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// newProbeID returns "p-" and 16 random base32 characters (80 bits).
func newProbeID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("collector: crypto/rand failed: " + err.Error())
	}
	return "p-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// RateLimiter counts a request under key and reports whether key is over
// its limit (then it has set Retry-After on w; the caller answers). It is
// the method set of *httprate.RateLimiter, the API's limiter, which the
// collector does not import (it links no chi code).
type RateLimiter interface {
	OnLimit(w http.ResponseWriter, r *http.Request, key string) bool
}

// enrollLimited reports whether src (or its /64) has used up its
// enrollment attempts, and if so answers 429.
func (c *Collector) enrollLimited(w http.ResponseWriter, r *http.Request, src netip.Addr) bool {
	if c.cfg.EnrollLimiter == nil {
		return false
	}
	keys := []string{"enroll-addr:" + src.String()}
	if src.Is6() {
		p, _ := src.Prefix(64)
		keys = append(keys, "enroll-64:"+p.String())
	}
	for _, k := range keys {
		if c.cfg.EnrollLimiter.OnLimit(w, r, k) {
			c.metrics.enrollments.WithLabelValues("rate_limited").Inc()
			if w.Header().Get("Retry-After") == "" {
				w.Header().Set("Retry-After", "60")
			}
			writeError(w, measure.CodeRateLimited, "too many enrollment attempts from this address; retry later")
			return true
		}
	}
	return false
}

// errEnrollToken is the one answer to a token that is unknown, used up,
// expired or revoked: which one it was is logged, not told, so guessing
// tokens learns nothing.
const errEnrollToken = "enrollment token not valid (unknown, used up, expired or revoked)"

func (c *Collector) handleEnroll(w http.ResponseWriter, r *http.Request) {
	src := clientAddr(r, c.cfg.TrustedProxies)
	if c.enrollLimited(w, r, src) {
		return
	}
	req, ok := readEnrollRequest(w, r)
	if !ok {
		return
	}
	e := Enrollment{
		TokenHash:    HashToken(req.Token),
		ProbeID:      newProbeID(),
		PublicKey:    ed25519.PublicKey(req.PublicKey),
		Version:      req.Version,
		Capabilities: req.Capabilities,
		Location:     req.Location,
		Src:          src,
		Geo:          withDeclaredCountry(c.cfg.Geo.Lookup(src), req.Location),
		Limits:       c.cfg.Limits,
		Now:          c.cfg.Now().UTC(),
	}
	err := c.store.Enroll(r.Context(), e)
	switch {
	case errors.Is(err, ErrTokenInvalid):
		c.metrics.enrollments.WithLabelValues("bad_token").Inc()
		c.log.Info("enrollment refused", "src", src, "err", err)
		writeError(w, measure.CodeUnauthorized, errEnrollToken)
		return
	case errors.Is(err, ErrProbeLimit):
		c.metrics.enrollments.WithLabelValues("limit").Inc()
		c.log.Info("enrollment refused by probe limit", "src", src, "err", err)
		writeError(w, measure.CodeForbidden, err.Error())
		return
	case err != nil:
		c.metrics.enrollments.WithLabelValues("error").Inc()
		c.log.Error("enroll", "err", err)
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "could not enroll now; retry later")
		return
	}
	c.keys.forget(e.ProbeID)
	c.metrics.enrollments.WithLabelValues("ok").Inc()
	c.log.Info("probe enrolled", "probe", e.ProbeID, "src", src, "asn", e.Geo.ASN)
	writeJSON(w, http.StatusCreated, measure.EnrollResponse{Probe: e.ProbeID})
}

func validLocation(l *measure.Location) bool {
	return l.Lat >= -90 && l.Lat <= 90 && l.Lon >= -180 && l.Lon <= 180
}

func (c *Collector) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb measure.Heartbeat
	if err := json.Unmarshal(bodyFrom(r.Context()), &hb); err != nil {
		writeError(w, measure.CodeInvalid, "heartbeat: "+err.Error())
		return
	}
	switch {
	case len(hb.Version) > 100:
		writeError(w, measure.CodeInvalid, "version: longer than 100 bytes")
		return
	case hb.Location != nil && !validLocation(hb.Location):
		writeError(w, measure.CodeInvalid, "location: lat/lon out of range")
		return
	case hb.SpoolDepth < 0 || hb.Dropped < 0:
		writeError(w, measure.CodeInvalid, "spool_depth/dropped: negative")
		return
	case len(hb.Capabilities.PingMode) > 16 || len(hb.Capabilities.TraceMode) > 16:
		writeError(w, measure.CodeInvalid, "capabilities: mode names too long")
		return
	}
	src := clientAddr(r, c.cfg.TrustedProxies)
	u := HeartbeatUpdate{ProbeID: probeFrom(r.Context()), Heartbeat: hb, Src: src, Geo: withDeclaredCountry(c.cfg.Geo.Lookup(src), hb.Location), Now: c.cfg.Now().UTC()}
	c.noteGeo(u.ProbeID, u.Geo)
	if err := c.store.Heartbeat(r.Context(), u); err != nil {
		c.log.Error("heartbeat", "probe", u.ProbeID, "err", err)
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "could not record heartbeat; retry later")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readEnrollRequest reads and checks the enrollment request of a probe or
// a site agent (at most 16 KiB of JSON, no unknown fields). It has
// answered the client when ok is false.
func readEnrollRequest(w http.ResponseWriter, r *http.Request) (req measure.EnrollRequest, ok bool) {
	body, err := readBody(w, r, 16<<10)
	if err != nil {
		writeError(w, measure.CodeTooLarge, "enrollment request larger than 16 KiB")
		return req, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, measure.CodeInvalid, "enrollment request: "+err.Error())
		return req, false
	}
	switch {
	case req.Token == "" || len(req.Token) > 256:
		writeError(w, measure.CodeInvalid, "token: missing")
	case len(req.PublicKey) != ed25519.PublicKeySize:
		writeError(w, measure.CodeInvalid, fmt.Sprintf("public_key: %d bytes, want %d (ed25519)", len(req.PublicKey), ed25519.PublicKeySize))
	case len(req.Version) > 100:
		writeError(w, measure.CodeInvalid, "version: longer than 100 bytes")
	case req.Location != nil && !validLocation(req.Location):
		writeError(w, measure.CodeInvalid, "location: lat/lon out of range")
	default:
		return req, true
	}
	return req, false
}
