package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

var errNoTokens = &Error{Code: CodeUnavailable, Message: "enrollment tokens are not available on this server"}

func idParam(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, invalid("id", "want a positive integer id")
	}
	return id, nil
}

func (s *Server) listKeys(r *http.Request) (any, error) {
	keys, err := s.store.ListKeys(r.Context())
	if err != nil {
		return nil, err
	}
	return listOf(keys), nil
}

// APIKeyCreated answers a key creation: the only time the secret is shown.
type APIKeyCreated struct {
	Key    APIKey `json:"key"`
	Secret string `json:"secret"`
}

func (s *Server) createKey(r *http.Request) (any, error) {
	var in struct {
		Name       string `json:"name"`
		Scope      string `json:"scope"`
		RatePerMin *int   `json:"rate_per_min"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	switch {
	case in.Scope != ScopeRead && in.Scope != ScopeAdmin:
		return nil, invalid("scope", "want read or admin")
	case len(in.Name) > 200:
		return nil, invalid("name", "longer than 200 characters")
	case in.RatePerMin != nil && (*in.RatePerMin < 1 || *in.RatePerMin > 1_000_000):
		return nil, invalid("rate_per_min", "want 1 to 1000000")
	}
	k, secret, err := CreateKey(r.Context(), s.store, in.Name, in.Scope, in.RatePerMin)
	if err != nil {
		return nil, err
	}
	return created(APIKeyCreated{Key: k, Secret: secret}), nil
}

func (s *Server) revokeKey(r *http.Request) (any, error) {
	id, err := idParam(r)
	if err != nil {
		return nil, err
	}
	if err := s.store.RevokeKey(r.Context(), id); errors.Is(err, ErrNotFound) {
		return nil, notFound("api key")
	} else if err != nil {
		return nil, err
	}
	return noContent, nil
}

func (s *Server) listTokens(r *http.Request) (any, error) {
	if s.cfg.Tokens == nil {
		return nil, errNoTokens
	}
	toks, err := s.cfg.Tokens.ListTokens(r.Context())
	if err != nil {
		return nil, err
	}
	return listOf(toks), nil
}

// EnrollmentTokenCreated answers a token creation: the only time the
// secret is shown.
type EnrollmentTokenCreated struct {
	Token  EnrollmentToken `json:"token"`
	Secret string          `json:"secret"`
}

func (s *Server) createToken(r *http.Request) (any, error) {
	if s.cfg.Tokens == nil {
		return nil, errNoTokens
	}
	var in struct {
		Name    string `json:"name"`
		MaxUses *int   `json:"max_uses"`
		TTL     string `json:"ttl"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	var ttl time.Duration
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d <= 0 {
			return nil, invalid("ttl", "want a positive duration like 72h")
		}
		ttl = d
	}
	maxUses := 0
	if in.MaxUses != nil {
		if *in.MaxUses < 1 {
			return nil, invalid("max_uses", "want at least 1")
		}
		maxUses = *in.MaxUses
	}
	if len(in.Name) > 200 {
		return nil, invalid("name", "longer than 200 characters")
	}
	tok, secret, err := s.cfg.Tokens.CreateToken(r.Context(), in.Name, maxUses, ttl)
	if err != nil {
		return nil, err
	}
	return created(EnrollmentTokenCreated{Token: tok, Secret: secret}), nil
}

func (s *Server) revokeToken(r *http.Request) (any, error) {
	if s.cfg.Tokens == nil {
		return nil, errNoTokens
	}
	id, err := idParam(r)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Tokens.RevokeToken(r.Context(), id); errors.Is(err, ErrNotFound) {
		return nil, notFound("enrollment token")
	} else if err != nil {
		return nil, err
	}
	return noContent, nil
}
