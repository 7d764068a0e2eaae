package api

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/anycatch/anycatch/catchment"
)

// list is the wire shape of every list response.
type list[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func listOf[T any](data []T) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Data: data}
}

// target resolves the {target} path parameter.
func (s *Server) target(r *http.Request) (Target, error) {
	name, err := targetParam(r)
	if err != nil {
		return Target{}, err
	}
	t, err := s.store.GetTarget(r.Context(), name)
	if errors.Is(err, ErrNotFound) {
		return Target{}, notFound("target " + name)
	}
	return t, err
}

func (s *Server) listTargets(w http.ResponseWriter, r *http.Request) {
	ts, err := s.store.ListTargets(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(ts))
}

func (s *Server) getTarget(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// targetInput is the body of create and update; absent fields keep their
// stored (or default) values.
type targetInput struct {
	Name          *string     `json:"name"`
	Description   *string     `json:"description"`
	Addr4         *string     `json:"addr4"`
	Addr6         *string     `json:"addr6"`
	IntervalSec   *int        `json:"interval_sec"`
	Specs         *[]specJSON `json:"specs"`
	IdentityOrder *[]string   `json:"identity_order"`
	Enabled       *bool       `json:"enabled"`
}

func (in targetInput) apply(t *Target) error {
	if in.Name != nil {
		if !targetNameRE.MatchString(*in.Name) {
			return invalid("name", "target names are 1-63 characters of a-z, 0-9, '.', '_' and '-'")
		}
		t.Name = *in.Name
	}
	if in.Description != nil {
		t.Description = *in.Description
	}
	if in.Addr4 != nil {
		if *in.Addr4 != "" && !isAddr(*in.Addr4, 4) {
			return invalid("addr4", "not an IPv4 address")
		}
		t.Addr4 = *in.Addr4
	}
	if in.Addr6 != nil {
		if *in.Addr6 != "" && !isAddr(*in.Addr6, 6) {
			return invalid("addr6", "not an IPv6 address")
		}
		t.Addr6 = *in.Addr6
	}
	if in.IntervalSec != nil {
		if *in.IntervalSec < 10 || *in.IntervalSec > 86400 {
			return invalid("interval_sec", "want 10 to 86400 seconds")
		}
		t.IntervalSec = *in.IntervalSec
	}
	if in.Specs != nil {
		t.Specs = t.Specs[:0]
		for _, sp := range *in.Specs {
			if !sp.Kind.Valid() {
				return invalid("specs", "unknown measurement kind %q", sp.Kind)
			}
			t.Specs = append(t.Specs, sp.Spec())
		}
	}
	if in.IdentityOrder != nil {
		for _, src := range *in.IdentityOrder {
			if !catchment.ValidOrderSource(src) {
				return invalid("identity_order", "unknown identity source %q", src)
			}
		}
		t.IdentityOrder = *in.IdentityOrder
	}
	if in.Enabled != nil {
		t.Enabled = *in.Enabled
	}
	if t.Addr4 == "" && t.Addr6 == "" {
		return invalid("addr4", "a target needs addr4 or addr6")
	}
	return nil
}

func (s *Server) createTarget(w http.ResponseWriter, r *http.Request) {
	var in targetInput
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Name == nil {
		s.writeError(w, r, invalid("name", "missing"))
		return
	}
	t := Target{IntervalSec: 300, Enabled: true,
		IdentityOrder: []string{catchment.SourceHostnameBind, catchment.SourceIDServer, catchment.SourceNSID}}
	if err := in.apply(&t); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.store.CreateTarget(r.Context(), t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.changed()
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) updateTarget(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in targetInput
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := in.apply(&t); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err = s.store.UpdateTarget(r.Context(), t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.changed()
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) deleteTarget(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err == nil {
		err = s.store.DeleteTarget(r.Context(), t.ID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listSites(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sites, err := s.store.ListSites(r.Context(), t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(sites))
}

func siteParam(r *http.Request) (string, error) {
	code := chi.URLParam(r, "site")
	if !siteCodeRE.MatchString(code) {
		return "", invalid("site", "site codes are 1-32 characters of a-z, 0-9, '.', '_' and '-'")
	}
	return code, nil
}

func (s *Server) putSite(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	code, err := siteParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var site Site
	if err := decodeBody(r, &site); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case site.Code != "" && site.Code != code:
		err = invalid("code", "body code %q differs from the path", site.Code)
	case site.Lat != nil && (*site.Lat < -90 || *site.Lat > 90):
		err = invalid("lat", "want -90 to 90")
	case site.Lon != nil && (*site.Lon < -180 || *site.Lon > 180):
		err = invalid("lon", "want -180 to 180")
	case site.Unicast4 != "" && !isAddr(site.Unicast4, 4):
		err = invalid("unicast4", "not an IPv4 address")
	case site.Unicast6 != "" && !isAddr(site.Unicast6, 6):
		err = invalid("unicast6", "not an IPv6 address")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	site.Code = code
	if err := s.store.PutSite(r.Context(), t.ID, site); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.changed()
	writeJSON(w, http.StatusOK, site)
}

func (s *Server) deleteSite(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	code, err := siteParam(r)
	if err == nil {
		err = s.store.DeleteSite(r.Context(), t.ID, code)
	}
	if errors.Is(err, ErrNotFound) {
		err = notFound("site " + code)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rules, err := s.store.ListRules(r.Context(), t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(rules))
}

func (s *Server) replaceRules(w http.ResponseWriter, r *http.Request) {
	t, err := s.target(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Data []catchment.Rule `json:"data"`
	}
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Compiling them is the validation: the same code maps identities.
	if _, err := catchment.NewIdentifier(t.IdentityOrder, in.Data); err != nil {
		s.writeError(w, r, invalid("data", "%v", err))
		return
	}
	if err := s.store.ReplaceRules(r.Context(), t.ID, in.Data); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.changed()
	writeJSON(w, http.StatusOK, listOf(in.Data))
}
