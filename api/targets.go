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

func (s *Server) listTargets(r *http.Request) (any, error) {
	ts, err := s.store.ListTargets(r.Context())
	if err != nil {
		return nil, err
	}
	return listOf(ts), nil
}

func (s *Server) getTarget(r *http.Request) (any, error) {
	return s.target(r)
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

// apply sets the fields of in on t and validates the result
// ([catchment.Target.Validate]: the same checks as the admin CLI).
func (in targetInput) apply(t *Target) error {
	if in.Name != nil {
		t.Name = *in.Name
	}
	if in.Description != nil {
		t.Description = *in.Description
	}
	if in.Addr4 != nil {
		t.Addr4 = *in.Addr4
	}
	if in.Addr6 != nil {
		t.Addr6 = *in.Addr6
	}
	if in.IntervalSec != nil {
		t.IntervalSec = *in.IntervalSec
	}
	if in.Specs != nil {
		t.Specs = t.Specs[:0]
		for _, sp := range *in.Specs {
			t.Specs = append(t.Specs, sp.Spec())
		}
	}
	if in.IdentityOrder != nil {
		t.IdentityOrder = *in.IdentityOrder
	}
	if in.Enabled != nil {
		t.Enabled = *in.Enabled
	}
	return invalidField(t.Validate())
}

// invalidField turns a validation error of package catchment into the
// API's invalid error naming the field.
func invalidField(err error) error {
	var ie *catchment.InvalidError
	if errors.As(err, &ie) {
		return invalid(ie.Field, "%s", ie.Reason)
	}
	return err
}

func (s *Server) createTarget(r *http.Request) (any, error) {
	var in targetInput
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, invalid("name", "missing")
	}
	t := Target{IntervalSec: 300, Enabled: true,
		IdentityOrder: []string{catchment.SourceHostnameBind, catchment.SourceIDServer, catchment.SourceNSID}}
	if err := in.apply(&t); err != nil {
		return nil, err
	}
	t, err := s.store.CreateTarget(r.Context(), t)
	if err != nil {
		return nil, err
	}
	s.changed()
	return created(t), nil
}

func (s *Server) updateTarget(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	var in targetInput
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if err := in.apply(&t); err != nil {
		return nil, err
	}
	t, err = s.store.UpdateTarget(r.Context(), t)
	if err != nil {
		return nil, err
	}
	s.changed()
	return t, nil
}

func (s *Server) deleteTarget(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteTarget(r.Context(), t.ID); err != nil {
		return nil, err
	}
	s.changed()
	return noContent, nil
}

func (s *Server) listSites(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	sites, err := s.store.ListSites(r.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	return listOf(sites), nil
}

func siteParam(r *http.Request) (string, error) {
	code := chi.URLParam(r, "site")
	if !siteCodeRE.MatchString(code) {
		return "", invalid("site", "site codes are 1-32 characters of a-z, 0-9, '.', '_' and '-'")
	}
	return code, nil
}

func (s *Server) putSite(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	code, err := siteParam(r)
	if err != nil {
		return nil, err
	}
	var site Site
	if err := decodeBody(r, &site); err != nil {
		return nil, err
	}
	if site.Code != "" && site.Code != code {
		return nil, invalid("code", "body code %q differs from the path", site.Code)
	}
	site.Code = code
	if err := site.Validate(); err != nil {
		return nil, invalidField(err)
	}
	if err := s.store.PutSite(r.Context(), t.ID, site); err != nil {
		return nil, err
	}
	s.changed()
	return site, nil
}

func (s *Server) deleteSite(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	code, err := siteParam(r)
	if err != nil {
		return nil, err
	}
	err = s.store.DeleteSite(r.Context(), t.ID, code)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("site " + code)
	}
	if err != nil {
		return nil, err
	}
	s.changed()
	return noContent, nil
}

func (s *Server) listRules(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	rules, err := s.store.ListRules(r.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	return listOf(rules), nil
}

func (s *Server) replaceRules(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	var in struct {
		Data []catchment.Rule `json:"data"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	// Compiling them is the validation: the same code maps identities.
	if err := catchment.ValidateRules(t.IdentityOrder, in.Data); err != nil {
		return nil, invalid("data", "%v", err)
	}
	if err := s.store.ReplaceRules(r.Context(), t.ID, in.Data); err != nil {
		return nil, err
	}
	s.changed()
	return listOf(in.Data), nil
}
