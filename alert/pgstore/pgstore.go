// Package pgstore adapts package store to the alert service's Store
// interface, translating rows to alert types and store errors to alert
// errors. It is wiring: alert and alert/service never import store.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/anycatch/anycatch/alert"
	"github.com/anycatch/anycatch/alert/service"
	"github.com/anycatch/anycatch/store"
)

// Store implements service.Store over a *store.DB.
type Store struct{ DB *store.DB }

var _ service.Store = Store{}

func alertErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", alert.ErrNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", alert.ErrConflict, err)
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %w", alert.ErrInvalid, err)
	}
	return err
}

func (s Store) Targets(ctx context.Context) ([]service.TargetInfo, error) {
	ts, err := s.DB.ListTargets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]service.TargetInfo, 0, len(ts))
	for _, t := range ts {
		sites, err := s.DB.ListSites(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		ti := service.TargetInfo{ID: t.ID, Name: t.Name, IntervalSec: t.IntervalSec, Enabled: t.Enabled}
		for _, st := range sites {
			ti.Sites = append(ti.Sites, st.Code)
		}
		out = append(out, ti)
	}
	return out, nil
}

func (s Store) Counts(ctx context.Context, targetID int, since time.Time) ([]service.Count, error) {
	cs, err := s.DB.CatchmentCounts(ctx, targetID, since)
	if err != nil {
		return nil, err
	}
	out := make([]service.Count, len(cs))
	for i, c := range cs {
		out[i] = service.Count(c)
	}
	return out, nil
}

// place is a change side's place as package catchment names it: the
// site, "?identity" for an unmapped answer, "" when nothing is known.
func place(state, site, identity string) string {
	switch {
	case site != "":
		return site
	case state == "unidentified":
		return "?" + identity
	}
	return ""
}

func (s Store) Moves(ctx context.Context, targetID int, from, to time.Time, limit int) ([]alert.Move, error) {
	rows, err := s.DB.Changes(ctx, store.ChangeQuery{TargetID: targetID, From: from, To: to, Limit: limit, MovesOnly: true})
	if err != nil {
		return nil, err
	}
	out := make([]alert.Move, 0, len(rows))
	for _, r := range rows {
		out = append(out, alert.Move{TargetID: targetID, AF: r.AF, Probe: r.Probe, Time: r.TS,
			From: place(r.FromState, r.FromSite, r.FromIdentity), To: place(r.ToState, r.ToSite, r.ToIdentity)})
	}
	return out, nil
}

func (s Store) Rules(ctx context.Context, target string) ([]alert.Rule, error) {
	rows, err := s.DB.ListAlertRules(ctx, target)
	if err != nil {
		return nil, err
	}
	out := make([]alert.Rule, 0, len(rows))
	for _, r := range rows {
		var ar alert.Rule
		if err := json.Unmarshal(r.Definition, &ar); err != nil {
			return nil, fmt.Errorf("alert rule %d: decode: %w", r.ID, err)
		}
		ar.ID, ar.TargetID, ar.Target, ar.Enabled, ar.CreatedAt = r.ID, r.TargetID, r.Target, r.Enabled, r.CreatedAt
		out = append(out, ar)
	}
	return out, nil
}

func (s Store) CreateRule(ctx context.Context, r *alert.Rule) error {
	def, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("create alert rule: encode: %w", err)
	}
	row := store.AlertRuleRow{Target: r.Target, Enabled: r.Enabled, Definition: def}
	if err := s.DB.CreateAlertRule(ctx, &row); err != nil {
		return alertErr(err)
	}
	r.ID, r.TargetID, r.CreatedAt = row.ID, row.TargetID, row.CreatedAt
	return nil
}

func (s Store) SetRuleEnabled(ctx context.Context, id int64, enabled bool) error {
	return alertErr(s.DB.SetAlertRuleEnabled(ctx, id, enabled))
}

func (s Store) SetWebhookEnabled(ctx context.Context, id int64, enabled bool) error {
	return alertErr(s.DB.SetWebhookEnabled(ctx, id, enabled))
}

func (s Store) DeleteRule(ctx context.Context, id int64) error {
	return alertErr(s.DB.DeleteAlertRule(ctx, id))
}

func (s Store) OpenAlert(ctx context.Context, a *alert.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("open alert: encode: %w", err)
	}
	row := store.AlertRow{RuleID: a.RuleID, TargetID: a.TargetID, AF: a.AF, Subject: a.Subject, StartedAt: a.StartedAt, Body: body}
	err = s.DB.OpenAlert(ctx, &row)
	a.ID = row.ID
	return alertErr(err)
}

// ResolveAlert keeps the stored alert's firing-time summary, sites and
// probes (the history shows what happened) and records the resolve.
func (s Store) ResolveAlert(ctx context.Context, a alert.Alert) error {
	at := time.Now()
	if a.ResolvedAt != nil {
		at = *a.ResolvedAt
	}
	patch, err := json.Marshal(map[string]any{"status": alert.StatusResolved, "resolved_at": at})
	if err != nil {
		return fmt.Errorf("resolve alert: encode: %w", err)
	}
	return alertErr(s.DB.ResolveAlert(ctx, a.ID, at, patch))
}

func (s Store) Alerts(ctx context.Context, q alert.AlertQuery) ([]alert.Alert, error) {
	rows, err := s.DB.ListAlerts(ctx, store.AlertQuery{Target: q.Target, Status: string(q.Status), Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]alert.Alert, 0, len(rows))
	for _, r := range rows {
		var a alert.Alert
		if err := json.Unmarshal(r.Body, &a); err != nil {
			return nil, fmt.Errorf("alert %d: decode: %w", r.ID, err)
		}
		// The columns are the truth; the body is what was notified.
		a.ID, a.RuleID, a.TargetID, a.Target, a.AF, a.Subject = r.ID, r.RuleID, r.TargetID, r.Target, r.AF, r.Subject
		a.Status, a.StartedAt, a.ResolvedAt = alert.Status(r.Status), r.StartedAt, r.ResolvedAt
		out = append(out, a)
	}
	return out, nil
}

func fromWebhook(w store.WebhookRow) alert.Webhook {
	return alert.Webhook{ID: w.ID, Name: w.Name, URL: w.URL, Secret: w.Secret, AllowPrivate: w.AllowPrivate,
		Target: w.Target, MaxAttempts: w.MaxAttempts, Enabled: w.Enabled, CreatedAt: w.CreatedAt}
}

func (s Store) Webhooks(ctx context.Context) ([]alert.Webhook, error) {
	rows, err := s.DB.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]alert.Webhook, len(rows))
	for i, r := range rows {
		out[i] = fromWebhook(r)
	}
	return out, nil
}

func (s Store) Webhook(ctx context.Context, id int64) (alert.Webhook, error) {
	r, err := s.DB.GetWebhook(ctx, id)
	if err != nil {
		return alert.Webhook{}, alertErr(err)
	}
	return fromWebhook(r), nil
}

func (s Store) CreateWebhook(ctx context.Context, w *alert.Webhook) error {
	row := store.WebhookRow{Name: w.Name, URL: w.URL, Secret: w.Secret, AllowPrivate: w.AllowPrivate, Target: w.Target,
		MaxAttempts: w.MaxAttempts, Enabled: w.Enabled}
	if err := s.DB.CreateWebhook(ctx, &row); err != nil {
		return alertErr(err)
	}
	w.ID, w.CreatedAt = row.ID, row.CreatedAt
	return nil
}

func (s Store) DeleteWebhook(ctx context.Context, id int64) error {
	return alertErr(s.DB.DeleteWebhook(ctx, id))
}

func toDelivery(d store.DeliveryRow) alert.Delivery {
	out := alert.Delivery{ID: d.ID, WebhookID: d.WebhookID, AlertID: d.AlertID, Event: alert.Status(d.Event), State: d.State,
		Attempts: d.Attempts, LastError: d.LastError, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, DeliveredAt: d.DeliveredAt}
	if d.LastStatus != nil {
		out.LastStatus = *d.LastStatus
	}
	return out
}

func (s Store) CreateDelivery(ctx context.Context, d *alert.Delivery) error {
	row := store.DeliveryRow{WebhookID: d.WebhookID, AlertID: d.AlertID, Event: string(d.Event), Payload: d.Payload}
	if err := s.DB.CreateDelivery(ctx, &row); err != nil {
		return alertErr(err)
	}
	d.ID, d.State, d.CreatedAt, d.UpdatedAt = row.ID, row.State, row.CreatedAt, row.UpdatedAt
	return nil
}

func (s Store) UpdateDelivery(ctx context.Context, d *alert.Delivery) error {
	row := store.DeliveryRow{ID: d.ID, State: d.State, Attempts: d.Attempts, LastError: d.LastError, DeliveredAt: d.DeliveredAt}
	if d.LastStatus != 0 {
		st := d.LastStatus
		row.LastStatus = &st
	}
	if err := s.DB.UpdateDelivery(ctx, &row); err != nil {
		return alertErr(err)
	}
	d.UpdatedAt = row.UpdatedAt
	return nil
}

func (s Store) PendingDeliveries(ctx context.Context) ([]alert.Delivery, error) {
	rows, err := s.DB.PendingDeliveries(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]alert.Delivery, len(rows))
	for i, r := range rows {
		out[i] = toDelivery(r)
		out[i].Payload = r.Payload
	}
	return out, nil
}

func (s Store) Deliveries(ctx context.Context, webhookID int64, limit int) ([]alert.Delivery, error) {
	rows, err := s.DB.ListDeliveries(ctx, webhookID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]alert.Delivery, len(rows))
	for i, r := range rows {
		out[i] = toDelivery(r)
	}
	return out, nil
}
