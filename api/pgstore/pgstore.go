// Package pgstore adapts package store (and the collector's enrollment
// token service) to the interfaces package api declares, translating
// store errors to api errors. It is wiring: api itself never imports store.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// Store implements api.Store over a *store.DB.
type Store struct{ DB *store.DB }

var _ api.Store = Store{}

// New returns the adapter for db.
func New(db *store.DB) Store { return Store{DB: db} }

// apiErr maps store sentinels to api errors; anything else stays internal.
func apiErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return api.ErrNotFound
	case errors.Is(err, store.ErrConflict):
		return api.ErrConflict
	case errors.Is(err, store.ErrInvalid):
		return &api.Error{Code: api.CodeInvalid, Message: "the database refused a value: " + err.Error()}
	}
	return err
}

func (s Store) ListTargets(ctx context.Context) ([]api.Target, error) {
	ts, err := s.DB.ListTargets(ctx)
	if err != nil {
		return nil, apiErr(err)
	}
	return ts, nil
}

func (s Store) GetTarget(ctx context.Context, name string) (api.Target, error) {
	t, err := s.DB.GetTarget(ctx, name)
	if err != nil {
		return api.Target{}, apiErr(err)
	}
	return *t, nil
}

func (s Store) CreateTarget(ctx context.Context, t api.Target) (api.Target, error) {
	if err := s.DB.CreateTarget(ctx, &t); err != nil {
		return api.Target{}, apiErr(err)
	}
	return t, nil
}

func (s Store) UpdateTarget(ctx context.Context, t api.Target) (api.Target, error) {
	if err := s.DB.UpdateTarget(ctx, &t); err != nil {
		return api.Target{}, apiErr(err)
	}
	return t, nil
}

func (s Store) DeleteTarget(ctx context.Context, id int) error {
	return apiErr(s.DB.DeleteTarget(ctx, id))
}

func (s Store) ListSites(ctx context.Context, targetID int) ([]api.Site, error) {
	ss, err := s.DB.ListSites(ctx, targetID)
	return ss, apiErr(err)
}

func (s Store) PutSite(ctx context.Context, targetID int, x api.Site) error {
	return apiErr(s.DB.PutSite(ctx, targetID, x))
}

func (s Store) DeleteSite(ctx context.Context, targetID int, code string) error {
	return apiErr(s.DB.DeleteSite(ctx, targetID, code))
}

func (s Store) ListRules(ctx context.Context, targetID int) ([]catchment.Rule, error) {
	rs, err := s.DB.ListRules(ctx, targetID)
	return rs, apiErr(err)
}

func (s Store) ReplaceRules(ctx context.Context, targetID int, rules []catchment.Rule) error {
	return apiErr(s.DB.ReplaceRules(ctx, targetID, rules))
}

func (s Store) ListProbes(ctx context.Context, f api.ProbeFilter) ([]api.ProbeRow, error) {
	ps, err := s.DB.ListProbes(ctx, store.ProbeFilter(f))
	if err != nil {
		return nil, apiErr(err)
	}
	out := make([]api.ProbeRow, len(ps))
	for i, p := range ps {
		out[i] = api.ProbeRow(p)
	}
	return out, nil
}

func (s Store) GetProbe(ctx context.Context, id string) (api.ProbeRow, error) {
	p, err := s.DB.GetProbe(ctx, id)
	return api.ProbeRow(p), apiErr(err)
}

func (s Store) SetProbeEnabled(ctx context.Context, id string, enabled bool) error {
	status := "disabled"
	if enabled {
		status = "active"
	}
	return apiErr(s.DB.SetProbeStatus(ctx, id, status))
}

func (s Store) Catchment(ctx context.Context, q api.CatchmentQuery) ([]api.CatchmentRow, error) {
	rs, err := s.DB.Catchment(ctx, store.CatchmentQuery(q))
	if err != nil {
		return nil, apiErr(err)
	}
	return rs, nil // the same type: catchment's
}

func (s Store) Latency(ctx context.Context, q api.LatencyQuery) ([]api.LatencyRow, error) {
	rs, err := s.DB.Latency(ctx, store.LatencyQuery(q))
	if err != nil {
		return nil, apiErr(err)
	}
	return rs, nil // the same type: catchment's
}

func (s Store) Changes(ctx context.Context, q api.ChangeQuery) ([]api.ChangeRow, error) {
	rs, err := s.DB.Changes(ctx, store.ChangeQuery(q))
	if err != nil {
		return nil, apiErr(err)
	}
	out := make([]api.ChangeRow, len(rs))
	for i, r := range rs {
		out[i] = api.ChangeRow(r)
	}
	return out, nil
}

// ChangeTimes implements api.Store.
func (s Store) ChangeTimes(ctx context.Context, q api.ChangeTimesQuery) ([]api.ChangeTime, error) {
	rs, err := s.DB.ChangeTimes(ctx, store.ChangeTimesQuery(q))
	if err != nil {
		return nil, apiErr(err)
	}
	out := make([]api.ChangeTime, len(rs))
	for i, r := range rs {
		out[i] = api.ChangeTime(r)
	}
	return out, nil
}

func (s Store) ChangeCounts(ctx context.Context, q api.ChangeQuery) ([]api.ProbeChangeCount, []api.SiteChangeCount, error) {
	ps, ss, err := s.DB.ChangeCounts(ctx, store.ChangeQuery(q))
	if err != nil {
		return nil, nil, apiErr(err)
	}
	po := make([]api.ProbeChangeCount, len(ps))
	for i, p := range ps {
		po[i] = api.ProbeChangeCount(p)
	}
	so := make([]api.SiteChangeCount, len(ss))
	for i, x := range ss {
		so[i] = api.SiteChangeCount(x)
	}
	return po, so, nil
}

func (s Store) Unmapped(ctx context.Context, targetID int) ([]api.UnmappedIdentity, error) {
	us, err := s.DB.Unmapped(ctx, targetID)
	if err != nil {
		return nil, apiErr(err)
	}
	out := make([]api.UnmappedIdentity, len(us))
	for i, u := range us {
		out[i] = api.UnmappedIdentity(u)
	}
	return out, nil
}

func (s Store) StreamResults(ctx context.Context, q api.ResultQuery, fn func(*measure.Result) error) error {
	return apiErr(s.DB.StreamResults(ctx, store.ResultQuery(q), fn))
}

func (s Store) KeyByPrefix(ctx context.Context, prefix string) (api.APIKey, error) {
	k, err := s.DB.KeyByPrefix(ctx, prefix)
	return api.APIKey(k), apiErr(err)
}

func (s Store) CreateKey(ctx context.Context, k api.APIKey) (api.APIKey, error) {
	out, err := s.DB.CreateKey(ctx, store.APIKey(k))
	return api.APIKey(out), apiErr(err)
}

func (s Store) ListKeys(ctx context.Context) ([]api.APIKey, error) {
	ks, err := s.DB.ListKeys(ctx)
	if err != nil {
		return nil, apiErr(err)
	}
	out := make([]api.APIKey, len(ks))
	for i, k := range ks {
		out[i] = api.APIKey(k)
	}
	return out, nil
}

func (s Store) RevokeKey(ctx context.Context, id int64) error { return apiErr(s.DB.RevokeKey(ctx, id)) }

func (s Store) TouchKey(ctx context.Context, id int64) error { return s.DB.TouchKey(ctx, id) }

// Tokens implements api.Tokens over the collector's token service.
type Tokens struct{ Service collector.Tokens }

var _ api.Tokens = Tokens{}

func apiToken(t collector.Token) api.EnrollmentToken {
	out := api.EnrollmentToken{ID: t.ID, Name: t.Name, Uses: t.Uses, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, CreatedAt: t.CreatedAt}
	if t.MaxUses > 0 {
		n := t.MaxUses
		out.MaxUses = &n
	}
	return out
}

func (t Tokens) CreateToken(ctx context.Context, name string, maxUses int, ttl time.Duration) (api.EnrollmentToken, string, error) {
	tok, secret, err := t.Service.Create(ctx, collector.TokenOptions{Name: name, MaxUses: maxUses, TTL: ttl})
	if err != nil {
		return api.EnrollmentToken{}, "", fmt.Errorf("create enrollment token: %w", err)
	}
	return apiToken(tok), secret, nil
}

func (t Tokens) ListTokens(ctx context.Context) ([]api.EnrollmentToken, error) {
	ts, err := t.Service.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.EnrollmentToken, len(ts))
	for i, x := range ts {
		out[i] = apiToken(x)
	}
	return out, nil
}

func (t Tokens) RevokeToken(ctx context.Context, id int64) error {
	err := t.Service.Revoke(ctx, id)
	if errors.Is(err, collector.ErrUnknownToken) {
		return api.ErrNotFound
	}
	return err
}

// SiteRTTs implements api.SpeedOfLightStore.
func (s Store) SiteRTTs(ctx context.Context, q api.SiteRTTQuery) ([]api.SiteRTTs, error) {
	rs, err := s.DB.SiteRTTs(ctx, q.TargetID, q.From, q.To, q.AF)
	if err != nil {
		return nil, apiErr(err)
	}
	out := make([]api.SiteRTTs, len(rs))
	for i, r := range rs {
		out[i] = api.SiteRTTs(r)
	}
	return out, nil
}

var _ api.SpeedOfLightStore = Store{}
