// Package pgstore adapts *store.DB to the collector's [collector.Store]
// interface. It is wiring: the collector itself never imports the store.
package pgstore

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/store"
)

// Adapter implements collector.Store on a *store.DB.
type Adapter struct{ DB *store.DB }

var _ collector.Store = Adapter{}

// New returns the adapter for db.
func New(db *store.DB) Adapter { return Adapter{DB: db} }

func (a Adapter) EnabledTargets(ctx context.Context) ([]collector.Target, error) {
	ts, err := a.DB.EnabledTargetsWithRules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]collector.Target, len(ts))
	for i, t := range ts {
		out[i] = collector.Target(t)
	}
	return out, nil
}

func (a Adapter) ProbeKey(ctx context.Context, id string) (collector.ProbeKey, error) {
	k, err := a.DB.ProbeKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return collector.ProbeKey{}, fmt.Errorf("%w: %s", collector.ErrUnknownProbe, id)
	}
	if err != nil {
		return collector.ProbeKey{}, err
	}
	return collector.ProbeKey{PublicKey: ed25519.PublicKey(k.PublicKey), Disabled: k.Disabled, Role: roleOf(k.Origin)}, nil
}

// roleOf is the role of a key by the origin of its probes row: enrolled
// site agents are origin 'site' (migration 007), volunteers 'anycatch'.
// Imported probes have no key; any other origin gets no role.
func roleOf(origin string) collector.Role {
	switch origin {
	case "anycatch":
		return collector.RoleProbe
	case "site":
		return collector.RoleSite
	}
	return ""
}

func probeGeo(g geo.Info) store.ProbeGeo {
	return store.ProbeGeo{ASN: g.ASN, ASName: g.ASName, Prefix: g.Prefix, Country: g.Country,
		Continent: g.Continent, City: g.City, Lat: g.Lat, Lon: g.Lon}
}

func (a Adapter) Enroll(ctx context.Context, e collector.Enrollment) error {
	err := a.DB.EnrollProbe(ctx, store.Enrollment{
		TokenHash: e.TokenHash, ProbeID: e.ProbeID, PublicKey: e.PublicKey, Version: e.Version,
		Capabilities: e.Capabilities, Location: e.Location, Src: e.Src, Geo: probeGeo(e.Geo),
		MaxPerAddr: e.Limits.PerAddr, MaxPer64: e.Limits.Per64, MaxPerPrefix: e.Limits.PerPrefix, Now: e.Now,
	})
	switch {
	case errors.Is(err, store.ErrTokenUnusable):
		return fmt.Errorf("%w: %s", collector.ErrTokenInvalid, reason(err, store.ErrTokenUnusable))
	case errors.Is(err, store.ErrProbeLimit):
		return fmt.Errorf("%w: %s", collector.ErrProbeLimit, reason(err, store.ErrProbeLimit))
	}
	return err
}

// reason strips the sentinel's own text from a wrapped message.
func reason(err, sentinel error) string {
	s := err.Error()
	p := sentinel.Error() + ": "
	for i := 0; i+len(p) <= len(s); i++ {
		if s[i:i+len(p)] == p {
			return s[i+len(p):]
		}
	}
	return s
}

func (a Adapter) Heartbeat(ctx context.Context, h collector.HeartbeatUpdate) error {
	return a.DB.RecordHeartbeat(ctx, store.ProbeHeartbeat{ProbeID: h.ProbeID, Heartbeat: h.Heartbeat, Src: h.Src, Geo: probeGeo(h.Geo), Now: h.Now})
}

func (a Adapter) IngestBatch(ctx context.Context, rows []collector.Row) ([]bool, error) {
	rs := make([]store.ResultRow, len(rows))
	for i, r := range rows {
		rs[i] = store.ResultRow{TargetID: r.TargetID, Result: r.Result, RTT: r.RTT, Loss: r.Loss, State: r.State, Site: r.Site, Identity: r.Identity, Source: r.Source}
	}
	ins, err := a.DB.IngestBatch(ctx, rs)
	if errors.Is(err, store.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", collector.ErrRowData, err)
	}
	return ins, err
}

func token(t store.EnrollmentToken) collector.Token {
	return collector.Token{ID: t.ID, Name: t.Name, MaxUses: t.MaxUses, Uses: t.Uses, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, CreatedAt: t.CreatedAt}
}

func (a Adapter) CreateToken(ctx context.Context, t collector.NewToken) (collector.Token, error) {
	st, err := a.DB.CreateEnrollmentToken(ctx, t.Name, t.Hash, t.MaxUses, t.ExpiresAt)
	if err != nil {
		return collector.Token{}, err
	}
	return token(st), nil
}

func (a Adapter) ListTokens(ctx context.Context) ([]collector.Token, error) {
	ts, err := a.DB.ListEnrollmentTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]collector.Token, len(ts))
	for i, t := range ts {
		out[i] = token(t)
	}
	return out, nil
}

func (a Adapter) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	err := a.DB.RevokeEnrollmentToken(ctx, id, at)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %d", collector.ErrUnknownToken, id)
	}
	return err
}

var _ collector.BurstRecorder = Adapter{}

// RecordBurst stores a confirmation burst.
func (a Adapter) RecordBurst(ctx context.Context, e collector.BurstEvent) error {
	return a.DB.RecordBurst(ctx, &store.Burst{At: e.At, TargetID: e.TargetID, Measurement: e.Measurement,
		Trigger: e.Trigger, From: e.From, To: e.To, Nudged: e.Nudged})
}
