package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// API keys look like "ack_<8 lowercase hex>_<43 base64url chars>". The
// first 12 characters (the prefix) are stored in clear for lookup and
// display; only the sha256 of the whole key is stored.
const (
	keyScheme    = "ack_"
	keyPrefixLen = len(keyScheme) + 8
	keyLen       = keyPrefixLen + 1 + 43
)

// Scopes of an API key. Admin includes read.
const (
	ScopeRead  = "read"
	ScopeAdmin = "admin"
)

// NewKey returns a fresh API key secret, its lookup prefix and its hash.
// The secret is shown to the user once and never stored.
func NewKey() (secret, prefix string, hash []byte) {
	var id [4]byte
	var body [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic("api: crypto/rand failed: " + err.Error())
	}
	if _, err := rand.Read(body[:]); err != nil {
		panic("api: crypto/rand failed: " + err.Error())
	}
	const hexdig = "0123456789abcdef"
	var b strings.Builder
	b.WriteString(keyScheme)
	for _, c := range id {
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	prefix = b.String()
	b.WriteByte('_')
	b.WriteString(base64.RawURLEncoding.EncodeToString(body[:]))
	secret = b.String()
	h := sha256.Sum256([]byte(secret))
	return secret, prefix, h[:]
}

// KeyPrefix returns the lookup prefix of a presented key, or false when it
// is not shaped like one of ours.
func KeyPrefix(secret string) (string, bool) {
	if len(secret) != keyLen || !strings.HasPrefix(secret, keyScheme) || secret[keyPrefixLen] != '_' {
		return "", false
	}
	for _, c := range secret[len(keyScheme):keyPrefixLen] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return secret[:keyPrefixLen], true
}

// principal is who is calling: a key, or anonymous (id 0).
type principal struct {
	keyID      int64
	scope      string
	ratePerMin int
	rateKey    string
}

type ctxKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(ctxKey{}).(principal)
	return p
}

var (
	errNoKey      = &Error{Code: CodeUnauthorized, Message: "missing API key: send Authorization: Bearer <key>"}
	errBadKey     = &Error{Code: CodeUnauthorized, Message: "unknown, malformed or revoked API key"}
	errNeedsAdmin = &Error{Code: CodeForbidden, Message: "this endpoint needs an API key with scope admin"}
	errRateLimit  = &Error{Code: CodeRateLimited, Message: "rate limit exceeded; retry after the number of seconds in Retry-After"}
)

// authenticate resolves the caller and applies its rate limit. A request
// with a bad key is refused even when anonymous reads are allowed, so a
// client never silently runs with less than it asked for.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.principal(r)
		if err != nil {
			if _, isAPI := err.(*Error); isAPI {
				w.Header().Set("WWW-Authenticate", `Bearer realm="anycatch"`)
			}
			s.writeError(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, p)
		if p.ratePerMin > 0 {
			ctx = withRequestLimit(ctx, p.ratePerMin)
		}
		r = r.WithContext(ctx)
		if s.limiter.OnLimit(w, r, p.rateKey) {
			s.writeError(w, r, errRateLimit)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) principal(r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if !s.cfg.AnonymousRead {
			return principal{}, errNoKey
		}
		// Keyed on the client a trusted proxy names, else the peer
		// (invalid only for a malformed RemoteAddr: then the raw text).
		key := r.RemoteAddr
		if a := measure.ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.cfg.TrustedProxies); a.IsValid() {
			key = a.String()
		}
		return principal{scope: ScopeRead, ratePerMin: s.cfg.AnonymousRatePerMin, rateKey: "ip:" + key}, nil
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return principal{}, errBadKey
	}
	secret = strings.TrimSpace(secret)
	prefix, ok := KeyPrefix(secret)
	if !ok {
		return principal{}, errBadKey
	}
	k, err := s.store.KeyByPrefix(r.Context(), prefix)
	if errors.Is(err, ErrNotFound) {
		return principal{}, errBadKey
	}
	if err != nil {
		return principal{}, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], k.Hash) != 1 || k.RevokedAt != nil {
		return principal{}, errBadKey
	}
	if now := s.now(); k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
		if err := s.store.TouchKey(r.Context(), k.ID); err != nil {
			s.log.Warn("api key last-used update failed", "key", k.ID, "err", err)
		}
	}
	rate := 0
	if k.RatePerMin != nil {
		rate = *k.RatePerMin
	}
	return principal{keyID: k.ID, scope: k.Scope, ratePerMin: rate, rateKey: "key:" + strconv.FormatInt(k.ID, 10)}, nil
}

// requireAdmin guards the admin routes.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if principalFrom(r.Context()).scope != ScopeAdmin {
			s.writeError(w, r, errNeedsAdmin)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// KeyCreator stores API keys; [Store] is one.
type KeyCreator interface {
	CreateKey(ctx context.Context, k APIKey) (APIKey, error)
}

// CreateKey generates a key, stores its prefix and hash, and returns the
// stored key and the secret, which must be shown once and not kept. The
// admin endpoint and the "key create" command both use it.
func CreateKey(ctx context.Context, st KeyCreator, name, scope string, ratePerMin *int) (APIKey, string, error) {
	if scope != ScopeRead && scope != ScopeAdmin {
		return APIKey{}, "", invalid("scope", "want read or admin")
	}
	secret, prefix, hash := NewKey()
	k, err := st.CreateKey(ctx, APIKey{Name: name, Prefix: prefix, Hash: hash, Scope: scope, RatePerMin: ratePerMin})
	if err != nil {
		return APIKey{}, "", err
	}
	return k, secret, nil
}

// RequireAdmin wraps next so that it answers only requests carrying an
// admin API key (the API's own check: errors, rate limit and all), for
// handlers outside the API's route tree such as the server's /metrics.
func (s *Server) RequireAdmin(next http.Handler) http.Handler {
	return s.authenticate(s.requireAdmin(next))
}
