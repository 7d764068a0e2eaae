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

// withAlerts answers unavailable when no alerting service is wired.
func (s *Server) withAlerts(h func(w http.ResponseWriter, r *http.Request, a Alerts)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Alerts == nil {
			s.writeError(w, r, errNoAlerts)
			return
		}
		h(w, r, s.cfg.Alerts)
	}
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, a Alerts) {
	q := newQuery(r)
	aq := alert.AlertQuery{Target: q.str("target"), Status: alert.Status(q.enum("status", "", "", "firing", "resolved")), Limit: q.limit()}
	if q.err != nil {
		s.writeError(w, r, q.err)
		return
	}
	out, err := a.Alerts(r.Context(), aq)
	if err != nil {
		s.writeError(w, r, alertError(err, "alerts"))
		return
	}
	writeJSON(w, http.StatusOK, listOf(out))
}

func (s *Server) listAlertRules(w http.ResponseWriter, r *http.Request, a Alerts) {
	target := r.URL.Query().Get("target")
	if err := cleanText("target", target); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := a.Rules(r.Context(), target)
	if err != nil {
		s.writeError(w, r, alertError(err, "alert rules"))
		return
	}
	writeJSON(w, http.StatusOK, listOf(out))
}

func (s *Server) createAlertRule(w http.ResponseWriter, r *http.Request, a Alerts) {
	var in struct {
		alert.Rule
		Enabled *bool `json:"enabled"` // default true
	}
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Target == "" {
		s.writeError(w, r, invalid("target", "the target's name is required"))
		return
	}
	if err := cleanText("name", in.Name, "target", in.Target, "kind", string(in.Kind), "region", string(in.Region)); err != nil {
		s.writeError(w, r, err)
		return
	}
	rule := in.Rule
	rule.ID, rule.Enabled = 0, in.Enabled == nil || *in.Enabled
	out, err := a.CreateRule(r.Context(), rule)
	if err != nil {
		s.writeError(w, r, alertError(err, "target "+in.Target))
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) deleteAlertRule(w http.ResponseWriter, r *http.Request, a Alerts) {
	id, err := idParam(r)
	if err == nil {
		err = alertError(a.DeleteRule(r.Context(), id), "alert rule")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, a Alerts) {
	out, err := a.Webhooks(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(out))
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, a Alerts) {
	var in struct {
		alert.Webhook
		Enabled *bool `json:"enabled"` // default true
	}
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := cleanText("name", in.Name, "url", in.URL, "secret", in.Secret, "target", in.Target); err != nil {
		s.writeError(w, r, err)
		return
	}
	hook := in.Webhook
	hook.ID, hook.Enabled = 0, in.Enabled == nil || *in.Enabled
	out, err := a.CreateWebhook(r.Context(), hook)
	if err != nil {
		s.writeError(w, r, alertError(err, "target "+in.Target))
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, a Alerts) {
	id, err := idParam(r)
	if err == nil {
		err = alertError(a.DeleteWebhook(r.Context(), id), "webhook")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request, a Alerts) {
	id, err := idParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := a.TestWebhook(r.Context(), id)
	if err != nil {
		s.writeError(w, r, alertError(err, "webhook"))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, a Alerts) {
	id, err := idParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := newQuery(r)
	limit := q.limit()
	if q.err != nil {
		s.writeError(w, r, q.err)
		return
	}
	out, err := a.Deliveries(r.Context(), id, limit)
	if err != nil {
		s.writeError(w, r, alertError(err, "webhook"))
		return
	}
	writeJSON(w, http.StatusOK, listOf(out))
}

// setEnabled answers PATCH {"enabled": bool} on a rule or webhook.
func (s *Server) setEnabled(what string, set func(a Alerts) func(context.Context, int64, bool) error) func(w http.ResponseWriter, r *http.Request, a Alerts) {
	return func(w http.ResponseWriter, r *http.Request, a Alerts) {
		id, err := idParam(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var in struct {
			Enabled *bool `json:"enabled"`
		}
		if err := decodeBody(r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
		if in.Enabled == nil {
			s.writeError(w, r, invalid("enabled", "want {\"enabled\": true|false}"))
			return
		}
		if err := set(a)(r.Context(), id, *in.Enabled); err != nil {
			s.writeError(w, r, alertError(err, what))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) patchAlertRule(w http.ResponseWriter, r *http.Request, a Alerts) {
	s.setEnabled("alert rule", func(a Alerts) func(context.Context, int64, bool) error { return a.SetRuleEnabled })(w, r, a)
}

func (s *Server) patchWebhook(w http.ResponseWriter, r *http.Request, a Alerts) {
	s.setEnabled("webhook", func(a Alerts) func(context.Context, int64, bool) error { return a.SetWebhookEnabled })(w, r, a)
}
