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

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.store.ListKeys(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(keys))
}

// APIKeyCreated answers a key creation: the only time the secret is shown.
type APIKeyCreated struct {
	Key    APIKey `json:"key"`
	Secret string `json:"secret"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name       string `json:"name"`
		Scope      string `json:"scope"`
		RatePerMin *int   `json:"rate_per_min"`
	}
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var err error
	switch {
	case in.Scope != ScopeRead && in.Scope != ScopeAdmin:
		err = invalid("scope", "want read or admin")
	case len(in.Name) > 200:
		err = invalid("name", "longer than 200 characters")
	case in.RatePerMin != nil && (*in.RatePerMin < 1 || *in.RatePerMin > 1_000_000):
		err = invalid("rate_per_min", "want 1 to 1000000")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	k, secret, err := CreateKey(r.Context(), s.store, in.Name, in.Scope, in.RatePerMin)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, APIKeyCreated{Key: k, Secret: secret})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r)
	if err == nil {
		err = s.store.RevokeKey(r.Context(), id)
	}
	if errors.Is(err, ErrNotFound) {
		err = notFound("api key")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Tokens == nil {
		s.writeError(w, r, errNoTokens)
		return
	}
	toks, err := s.cfg.Tokens.ListTokens(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(toks))
}

// EnrollmentTokenCreated answers a token creation: the only time the
// secret is shown.
type EnrollmentTokenCreated struct {
	Token  EnrollmentToken `json:"token"`
	Secret string          `json:"secret"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Tokens == nil {
		s.writeError(w, r, errNoTokens)
		return
	}
	var in struct {
		Name    string `json:"name"`
		MaxUses *int   `json:"max_uses"`
		TTL     string `json:"ttl"`
	}
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var ttl time.Duration
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d <= 0 {
			s.writeError(w, r, invalid("ttl", "want a positive duration like 72h"))
			return
		}
		ttl = d
	}
	maxUses := 0
	if in.MaxUses != nil {
		if *in.MaxUses < 1 {
			s.writeError(w, r, invalid("max_uses", "want at least 1"))
			return
		}
		maxUses = *in.MaxUses
	}
	if len(in.Name) > 200 {
		s.writeError(w, r, invalid("name", "longer than 200 characters"))
		return
	}
	tok, secret, err := s.cfg.Tokens.CreateToken(r.Context(), in.Name, maxUses, ttl)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, EnrollmentTokenCreated{Token: tok, Secret: secret})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Tokens == nil {
		s.writeError(w, r, errNoTokens)
		return
	}
	id, err := idParam(r)
	if err == nil {
		err = s.cfg.Tokens.RevokeToken(r.Context(), id)
	}
	if errors.Is(err, ErrNotFound) {
		err = notFound("enrollment token")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
