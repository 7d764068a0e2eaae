package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/anycatch/anycatch/alert"
)

// Alerts is the alerting service as the API uses it (wire
// alert/service.Service here). Errors wrapping alert.ErrNotFound,
// alert.ErrInvalid and alert.ErrConflict become 404, 400 and 409. A nil
// Alerts answers the alert endpoints with unavailable.
type Alerts interface {
	Rules(ctx context.Context, target string) ([]alert.Rule, error)
	CreateRule(ctx context.Context, r alert.Rule) (alert.Rule, error)
	DeleteRule(ctx context.Context, id int64) error
	SetRuleEnabled(ctx context.Context, id int64, enabled bool) error
	SetWebhookEnabled(ctx context.Context, id int64, enabled bool) error
	Alerts(ctx context.Context, q alert.AlertQuery) ([]alert.Alert, error)
	Webhooks(ctx context.Context) ([]alert.Webhook, error)
	CreateWebhook(ctx context.Context, w alert.Webhook) (alert.Webhook, error)
	DeleteWebhook(ctx context.Context, id int64) error
	TestWebhook(ctx context.Context, id int64) (alert.Delivery, error)
	Deliveries(ctx context.Context, webhookID int64, limit int) ([]alert.Delivery, error)
}

var errNoAlerts = &Error{Code: CodeUnavailable, Message: "alerting does not run in this server (role alerts)"}

// alertError maps the alert package's sentinels to API errors.
func alertError(err error, what string) error {
	switch {
	case errors.Is(err, alert.ErrNotFound):
		return notFound(what)
	case errors.Is(err, alert.ErrInvalid):
		return &Error{Code: CodeInvalid, Message: err.Error()}
	case errors.Is(err, alert.ErrConflict):
		return ErrConflict
	}
	return err
}

// cleanText checks (field, value) pairs of client-supplied text: a NUL,
// another control character or invalid UTF-8 is invalid input naming the
// field (the database would refuse it later with an internal error).
func cleanText(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		v := pairs[i+1]
		switch {
		case !utf8.ValidString(v):
			return invalid(pairs[i], "%s is not valid UTF-8", pairs[i])
		case strings.ContainsFunc(v, unicode.IsControl):
			return invalid(pairs[i], "%s contains a NUL or another control character", pairs[i])
		}
	}
	return nil
}

// alertsFunc is an apiFunc of the alert endpoints, given the service.
type alertsFunc func(r *http.Request, a Alerts) (any, error)

// withAlerts answers unavailable when no alerting service is wired.
func (s *Server) withAlerts(h alertsFunc) apiFunc {
	return func(r *http.Request) (any, error) {
		if s.cfg.Alerts == nil {
			return nil, errNoAlerts
		}
		return h(r, s.cfg.Alerts)
	}
}

func (s *Server) listAlerts(r *http.Request, a Alerts) (any, error) {
	q := newQuery(r)
	aq := alert.AlertQuery{Target: q.str("target"), Status: alert.Status(q.enum("status", "", "", "firing", "resolved")), Limit: q.limit()}
	if q.err != nil {
		return nil, q.err
	}
	out, err := a.Alerts(r.Context(), aq)
	if err != nil {
		return nil, alertError(err, "alerts")
	}
	return listOf(out), nil
}

func (s *Server) listAlertRules(r *http.Request, a Alerts) (any, error) {
	target := r.URL.Query().Get("target")
	if err := cleanText("target", target); err != nil {
		return nil, err
	}
	out, err := a.Rules(r.Context(), target)
	if err != nil {
		return nil, alertError(err, "alert rules")
	}
	return listOf(out), nil
}

func (s *Server) createAlertRule(r *http.Request, a Alerts) (any, error) {
	var in struct {
		alert.Rule
		Enabled *bool `json:"enabled"` // default true
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if in.Target == "" {
		return nil, invalid("target", "the target's name is required")
	}
	if err := cleanText("name", in.Name, "target", in.Target, "kind", string(in.Kind), "region", string(in.Region)); err != nil {
		return nil, err
	}
	rule := in.Rule
	rule.ID, rule.Enabled = 0, in.Enabled == nil || *in.Enabled
	out, err := a.CreateRule(r.Context(), rule)
	if err != nil {
		return nil, alertError(err, "target "+in.Target)
	}
	return created(out), nil
}

func (s *Server) deleteAlertRule(r *http.Request, a Alerts) (any, error) {
	id, err := idParam(r)
	if err != nil {
		return nil, err
	}
	if err := a.DeleteRule(r.Context(), id); err != nil {
		return nil, alertError(err, "alert rule")
	}
	return noContent, nil
}

func (s *Server) listWebhooks(r *http.Request, a Alerts) (any, error) {
	out, err := a.Webhooks(r.Context())
	if err != nil {
		return nil, err
	}
	return listOf(out), nil
}

func (s *Server) createWebhook(r *http.Request, a Alerts) (any, error) {
	var in struct {
		alert.Webhook
		Enabled *bool `json:"enabled"` // default true
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if err := cleanText("name", in.Name, "url", in.URL, "secret", in.Secret, "target", in.Target); err != nil {
		return nil, err
	}
	hook := in.Webhook
	hook.ID, hook.Enabled = 0, in.Enabled == nil || *in.Enabled
	out, err := a.CreateWebhook(r.Context(), hook)
	if err != nil {
		return nil, alertError(err, "target "+in.Target)
	}
	return created(out), nil
}

func (s *Server) deleteWebhook(r *http.Request, a Alerts) (any, error) {
	id, err := idParam(r)
	if err != nil {
		return nil, err
	}
	if err := a.DeleteWebhook(r.Context(), id); err != nil {
		return nil, alertError(err, "webhook")
	}
	return noContent, nil
}

func (s *Server) testWebhook(r *http.Request, a Alerts) (any, error) {
	id, err := idParam(r)
	if err != nil {
		return nil, err
	}
	d, err := a.TestWebhook(r.Context(), id)
	if err != nil {
		return nil, alertError(err, "webhook")
	}
	return d, nil
}

func (s *Server) listDeliveries(r *http.Request, a Alerts) (any, error) {
	id, err := idParam(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	limit := q.limit()
	if q.err != nil {
		return nil, q.err
	}
	out, err := a.Deliveries(r.Context(), id, limit)
	if err != nil {
		return nil, alertError(err, "webhook")
	}
	return listOf(out), nil
}

// setEnabled answers PATCH {"enabled": bool} on a rule or webhook.
func setEnabled(what string, r *http.Request, set func(context.Context, int64, bool) error) (any, error) {
	id, err := idParam(r)
	if err != nil {
		return nil, err
	}
	var in struct {
		Enabled *bool `json:"enabled"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if in.Enabled == nil {
		return nil, invalid("enabled", "want {\"enabled\": true|false}")
	}
	if err := set(r.Context(), id, *in.Enabled); err != nil {
		return nil, alertError(err, what)
	}
	return noContent, nil
}

func (s *Server) patchAlertRule(r *http.Request, a Alerts) (any, error) {
	return setEnabled("alert rule", r, a.SetRuleEnabled)
}

func (s *Server) patchWebhook(r *http.Request, a Alerts) (any, error) {
	return setEnabled("webhook", r, a.SetWebhookEnabled)
}
