// Package service runs alerting in the server: every few seconds it reads
// each target's catchment counts (from the collector's catchment state)
// and recent change events, evaluates the alert rules (package alert),
// stores firing and resolved alerts and sends them to the webhooks
// (package alert/webhook), keeping a delivery log. It also serves the
// catchment metrics for Prometheus from the same counts, so a scrape never
// queries the database. It reaches the database only through [Store].
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/anycatch/anycatch/alert"
	"github.com/anycatch/anycatch/alert/webhook"
)

// TargetInfo is what evaluation needs of a target.
type TargetInfo struct {
	ID          int
	Name        string
	IntervalSec int
	Enabled     bool
	Sites       []string // configured site codes: the only site label values metrics use
}

// Count is one group of a target's current catchment (see
// store.CatchmentCount).
type Count struct {
	AF        int
	State     string // site, unidentified or unreachable
	Site      string
	Probes    int
	MedianRTT *float64 // ms
}

// Store is the database as the service uses it; alert/pgstore implements
// it. Not-found and conflict errors wrap alert.ErrNotFound and
// alert.ErrConflict.
type Store interface {
	Targets(ctx context.Context) ([]TargetInfo, error)
	Counts(ctx context.Context, targetID int, since time.Time) ([]Count, error)
	// Moves returns a target's changes between places in [from, to), at
	// most limit (first observations are not moves).
	Moves(ctx context.Context, targetID int, from, to time.Time, limit int) ([]alert.Move, error)

	Rules(ctx context.Context, target string) ([]alert.Rule, error)
	CreateRule(ctx context.Context, r *alert.Rule) error
	DeleteRule(ctx context.Context, id int64) error

	// OpenAlert stores a firing alert and sets its ID; when one is
	// already firing for its (rule, af, subject) it sets that ID and
	// returns an error wrapping alert.ErrConflict.
	OpenAlert(ctx context.Context, a *alert.Alert) error
	ResolveAlert(ctx context.Context, a alert.Alert) error
	Alerts(ctx context.Context, q alert.AlertQuery) ([]alert.Alert, error)

	Webhooks(ctx context.Context) ([]alert.Webhook, error) // with secrets
	Webhook(ctx context.Context, id int64) (alert.Webhook, error)
	CreateWebhook(ctx context.Context, w *alert.Webhook) error
	DeleteWebhook(ctx context.Context, id int64) error
	CreateDelivery(ctx context.Context, d *alert.Delivery) error
	UpdateDelivery(ctx context.Context, d *alert.Delivery) error
	// SetRuleEnabled enables or disables a rule; disabling resolves its
	// firing alerts (without notifications).
	SetRuleEnabled(ctx context.Context, id int64, enabled bool) error
	SetWebhookEnabled(ctx context.Context, id int64, enabled bool) error
	// PendingDeliveries returns deliveries left pending (with payloads).
	PendingDeliveries(ctx context.Context) ([]alert.Delivery, error)
	Deliveries(ctx context.Context, webhookID int64, limit int) ([]alert.Delivery, error)
}

// Config configures a [Service]. Only Store is required.
type Config struct {
	Store Store
	// Log receives evaluation and delivery failures. nil means
	// slog.Default().
	Log *slog.Logger
	// Every is the evaluation period. 0 means 10 s.
	Every time.Duration
	// Webhook tunes delivery (timeouts, backoff, the server-wide private
	// address allow).
	Webhook webhook.Options
	// BaseURL is the server's public URL for links in notifications
	// (e.g. https://anycatch.example.net); "" gives paths only.
	BaseURL string
	// Now replaces the clock in tests. nil means time.Now.
	Now func() time.Time
	// MaxConcurrentDeliveries bounds webhook sends in flight. 0 means 8.
	MaxConcurrentDeliveries int
	// CheckEvery is the cadence of the periodic checks of region_flap,
	// speed_of_light and inflation rules (see [CheckStore]). 0 means
	// DefaultCheckEvery (5 min).
	CheckEvery time.Duration
}

// Service evaluates rules and delivers notifications.
type Service struct {
	cfg    Config
	st     Store
	log    *slog.Logger
	sender *webhook.Sender

	evalMu   sync.Mutex // one evaluation at a time; owns eval
	eval     *alert.Evaluator
	restored bool

	sem        chan struct{}
	deliveries sync.WaitGroup

	metrics *metrics

	checks       checkState // owned under evalMu
	warnedChecks bool
}

// New returns a service; start it with Run.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConcurrentDeliveries <= 0 {
		cfg.MaxConcurrentDeliveries = 8
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = DefaultCheckEvery
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Log, sender: webhook.New(cfg.Webhook), eval: alert.NewEvaluator(),
		sem: make(chan struct{}, cfg.MaxConcurrentDeliveries), metrics: newMetrics(), checks: checkState{}}
}

// Run evaluates every cfg.Every until ctx ends, then waits for deliveries
// in flight (which stop retrying when ctx ends).
func (s *Service) Run(ctx context.Context) error {
	defer s.deliveries.Wait()
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("alert evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Wait waits for the deliveries started so far (tests).
func (s *Service) Wait() { s.deliveries.Wait() }

// staleAfter is how long a track counts as current without a new
// observation: three measurement intervals plus upload slack.
func staleAfter(intervalSec int) time.Duration {
	return 3*time.Duration(intervalSec)*time.Second + 30*time.Second
}

// Tick runs one evaluation: read, evaluate, store, notify.
func (s *Service) Tick(ctx context.Context) error {
	s.evalMu.Lock()
	defer s.evalMu.Unlock()
	now := s.cfg.Now()
	if !s.restored {
		firing, err := s.st.Alerts(ctx, alert.AlertQuery{Status: alert.StatusFiring, Limit: 1000})
		if err != nil {
			return fmt.Errorf("alert tick: restore firing alerts: %w", err)
		}
		for _, a := range firing {
			s.eval.Restore(a)
		}
		if err := s.resumeDeliveries(ctx); err != nil {
			return fmt.Errorf("alert tick: %w", err)
		}
		s.restored = true
	}
	targets, err := s.st.Targets(ctx)
	if err != nil {
		return fmt.Errorf("alert tick: targets: %w", err)
	}
	rules, err := s.st.Rules(ctx, "")
	if err != nil {
		return fmt.Errorf("alert tick: rules: %w", err)
	}
	window := map[int]time.Duration{}
	maxWindow := time.Duration(alert.DefaultWindowSec) * time.Second
	for _, r := range rules {
		r.Defaults()
		w := time.Duration(r.WindowSec) * time.Second
		window[r.TargetID] = max(window[r.TargetID], w)
		maxWindow = max(maxWindow, w)
	}
	var errs []error
	snap := metricsSnapshot{at: now}
	for _, t := range targets {
		if !t.Enabled {
			continue
		}
		counts, err := s.st.Counts(ctx, t.ID, now.Add(-staleAfter(t.IntervalSec)))
		if err != nil {
			errs = append(errs, fmt.Errorf("counts of %s: %w", t.Name, err))
			continue
		}
		snap.add(t, counts)
		for _, af := range []int{4, 6} {
			sn := alert.Snapshot{TargetID: t.ID, AF: af, Time: now, Sites: map[string]int{}}
			for _, c := range counts {
				if c.AF != af {
					continue
				}
				switch c.State {
				case "site":
					sn.Sites[c.Site] += c.Probes
				case "unidentified":
					sn.Unidentified += c.Probes
				case "unreachable":
					sn.Unreachable += c.Probes
				}
			}
			// No data is not "every site lost": a family nobody
			// measures, or a collector outage, gives no snapshot.
			if sn.Total() > 0 {
				s.eval.Observe(sn)
			}
		}
		// Read a little further back than the window so changes uploaded
		// late (from a probe's spool) are still seen; AddMoves drops
		// the ones already known.
		w := max(window[t.ID], time.Duration(alert.DefaultWindowSec)*time.Second)
		moves, err := s.st.Moves(ctx, t.ID, now.Add(-w-2*time.Minute), now.Add(time.Minute), 20000)
		if err != nil {
			errs = append(errs, fmt.Errorf("moves of %s: %w", t.Name, err))
			continue
		}
		s.metrics.countMoves(t, s.eval.AddMoves(moves))
		if err := s.runChecks(ctx, now, t, rules); err != nil {
			errs = append(errs, err)
		}
	}
	s.metrics.set(snap)
	// Rules of disabled targets are not evaluated: their history stopped
	// and would otherwise hold alerts in whatever state they were.
	enabled := map[int]bool{}
	for _, t := range targets {
		enabled[t.ID] = t.Enabled
	}
	live := rules[:0:0]
	for _, r := range rules {
		if enabled[r.TargetID] {
			live = append(live, r)
		}
	}
	for _, ev := range s.eval.Eval(now, live) {
		a := ev.Alert
		switch a.Status {
		case alert.StatusFiring:
			err := s.st.OpenAlert(ctx, &a)
			if errors.Is(err, alert.ErrConflict) {
				s.eval.Bind(a) // another server (or an earlier run) fired it already
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			s.eval.Bind(a)
		case alert.StatusResolved:
			if a.ID == 0 {
				continue // never stored (its open failed): nothing to resolve
			}
			if err := s.st.ResolveAlert(ctx, a); errors.Is(err, alert.ErrNotFound) {
				continue // resolved already (its rule was disabled, or another server): notified then
			} else if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		s.log.Info("alert "+string(a.Status), "target", a.Target, "rule", a.RuleName, "kind", a.Kind, "subject", a.Subject, "af", a.AF, "summary", a.Summary)
		s.notify(ctx, a)
	}
	s.eval.Prune(now, maxWindow+5*time.Minute)
	s.metrics.setFiring(s.firingCounts(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("alert tick: %w", err)
	}
	return nil
}

func (s *Service) firingCounts(ctx context.Context) map[[2]string]int {
	firing, err := s.st.Alerts(ctx, alert.AlertQuery{Status: alert.StatusFiring, Limit: 1000})
	if err != nil {
		return nil
	}
	out := map[[2]string]int{}
	for _, a := range firing {
		out[[2]string{a.Target, string(a.Kind)}]++
	}
	return out
}

// Payload is the JSON body of a notification.
type Payload struct {
	Version int          `json:"version"` // 1
	Event   alert.Status `json:"event"`   // firing, resolved or test
	SentAt  time.Time    `json:"sent_at"`
	Alert   alert.Alert  `json:"alert"`
	Links   Links        `json:"links"`
}

// Links point at the alert and the catchment at its time. The catchment
// at a moment reads result rollups, rebuilt every 5 minutes: Map and
// Catchment show data once those cover the moment; LiveMap at once.
type Links struct {
	Alerts    string `json:"alerts"`    // API: the target's alerts
	Catchment string `json:"catchment"` // API: the catchment at the alert's moment
	Map       string `json:"map"`       // web UI: the map at that moment
	LiveMap   string `json:"live_map"`  // web UI: the map now
	AlertsUI  string `json:"alerts_ui"` // web UI: the target's alerts page
}

func (s *Service) payload(a alert.Alert, event alert.Status) Payload {
	at := a.StartedAt
	if a.ResolvedAt != nil {
		at = *a.ResolvedAt
	}
	q := url.Values{"target": {a.Target}}
	qm := url.Values{"target": {a.Target}, "at": {at.UTC().Format(time.RFC3339)}}
	return Payload{Version: 1, Event: event, SentAt: s.cfg.Now().UTC(), Alert: a, Links: Links{
		Alerts:    s.cfg.BaseURL + "/api/v1/alerts?" + q.Encode(),
		Catchment: s.cfg.BaseURL + "/api/v1/targets/" + url.PathEscape(a.Target) + "/catchment?at=" + url.QueryEscape(at.UTC().Format(time.RFC3339)),
		Map:       s.cfg.BaseURL + "/#/map?" + qm.Encode(),
		LiveMap:   s.cfg.BaseURL + "/#/map?" + q.Encode(),
		AlertsUI:  s.cfg.BaseURL + "/#/alerts?" + q.Encode(),
	}}
}

// notify starts a delivery of a to every enabled webhook of its target.
func (s *Service) notify(ctx context.Context, a alert.Alert) {
	hooks, err := s.st.Webhooks(ctx)
	if err != nil {
		s.log.Error("alert notify: webhooks", "err", err)
		return
	}
	body, err := json.Marshal(s.payload(a, a.Status))
	if err != nil {
		s.log.Error("alert notify: encode", "err", err)
		return
	}
	for _, w := range hooks {
		if !w.Enabled || w.Target != "" && w.Target != a.Target {
			continue
		}
		id := a.ID
		d := alert.Delivery{WebhookID: w.ID, AlertID: &id, Event: a.Status, Payload: body}
		if err := s.st.CreateDelivery(ctx, &d); err != nil {
			s.log.Error("alert notify: log delivery", "webhook", w.ID, "err", err)
			continue
		}
		s.startDelivery(ctx, w, d, body)
	}
}

// resumeDeliveries restarts the retries a stopped server left pending
// (their payloads are stored), continuing their attempt count; those whose
// webhook is gone or disabled are marked failed.
func (s *Service) resumeDeliveries(ctx context.Context) error {
	pending, err := s.st.PendingDeliveries(ctx)
	if err != nil {
		return err
	}
	for _, d := range pending {
		w, err := s.st.Webhook(ctx, d.WebhookID)
		if err != nil && !errors.Is(err, alert.ErrNotFound) {
			return err
		}
		if err != nil || !w.Enabled || len(d.Payload) == 0 || d.Event == alert.StatusTest {
			d.State = alert.DeliveryFailed
			d.LastError = strings.TrimPrefix(d.LastError+"; not resumed after a restart (webhook disabled, a test, or no payload)", "; ")
			if err := s.st.UpdateDelivery(ctx, &d); err != nil {
				return err
			}
			continue
		}
		s.log.Info("resuming webhook delivery", "webhook", w.ID, "delivery", d.ID, "attempts", d.Attempts)
		s.startDelivery(ctx, w, d, d.Payload)
	}
	return nil
}

// startDelivery sends in the background, at most MaxConcurrentDeliveries
// at a time.
func (s *Service) startDelivery(ctx context.Context, w alert.Webhook, d alert.Delivery, body []byte) {
	s.deliveries.Add(1)
	go func() {
		defer s.deliveries.Done()
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-s.sem }()
		s.deliver(ctx, w, d, body, w.MaxAttempts)
	}()
}

// deliver sends body and keeps d (the delivery log row) current after
// every attempt; d.Attempts made earlier count toward attempts.
func (s *Service) deliver(ctx context.Context, w alert.Webhook, d alert.Delivery, body []byte, attempts int) alert.Delivery {
	err := s.sender.Deliver(ctx, webhook.Request{URL: w.URL, Secret: []byte(w.Secret), AllowPrivate: w.AllowPrivate,
		Event: string(d.Event), DeliveryID: d.ID, Body: body, MaxAttempts: attempts, PriorAttempts: d.Attempts}, func(at webhook.Attempt) {
		d.Attempts, d.LastStatus, d.LastError = at.N, at.Status, at.Err
		switch {
		case at.OK:
			d.State = alert.DeliveryDelivered
			t := at.At
			d.DeliveredAt = &t
		case at.Final && ctx.Err() != nil && d.Event != alert.StatusTest:
			// Shutdown, not the receiver: stay pending so the next
			// start resumes the retries.
			d.State = alert.DeliveryPending
			d.LastError += " (the server stopped; retries resume when it starts again)"
		case at.Final:
			d.State = alert.DeliveryFailed
		}
		// The log must be written even when ctx ended (shutdown): it
		// says why the delivery stopped.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.st.UpdateDelivery(uctx, &d); err != nil {
			s.log.Error("alert delivery log", "delivery", d.ID, "err", err)
		}
	})
	s.metrics.countDelivery(d.State)
	if err != nil {
		s.log.Warn("webhook delivery failed", "webhook", w.ID, "delivery", d.ID, "attempts", d.Attempts, "err", err)
	}
	return d
}

// Rules lists the rules of a target ("" all).
func (s *Service) Rules(ctx context.Context, target string) ([]alert.Rule, error) {
	return s.st.Rules(ctx, target)
}

// CreateRule validates and stores a rule.
func (s *Service) CreateRule(ctx context.Context, r alert.Rule) (alert.Rule, error) {
	r.Defaults()
	if err := r.Validate(); err != nil {
		return alert.Rule{}, err
	}
	if err := s.st.CreateRule(ctx, &r); err != nil {
		return alert.Rule{}, err
	}
	return r, nil
}

// SetRuleEnabled mutes (false) or unmutes a rule. Muting resolves its
// firing alerts in the history without notifying anyone.
func (s *Service) SetRuleEnabled(ctx context.Context, id int64, enabled bool) error {
	return s.st.SetRuleEnabled(ctx, id, enabled)
}

// SetWebhookEnabled pauses (false) or resumes notifications to an endpoint.
func (s *Service) SetWebhookEnabled(ctx context.Context, id int64, enabled bool) error {
	return s.st.SetWebhookEnabled(ctx, id, enabled)
}

// DeleteRule deletes a rule and its alerts.
func (s *Service) DeleteRule(ctx context.Context, id int64) error { return s.st.DeleteRule(ctx, id) }

// Alerts lists alerts, newest first.
func (s *Service) Alerts(ctx context.Context, q alert.AlertQuery) ([]alert.Alert, error) {
	return s.st.Alerts(ctx, q)
}

// Webhooks lists the endpoints without their secrets.
func (s *Service) Webhooks(ctx context.Context) ([]alert.Webhook, error) {
	ws, err := s.st.Webhooks(ctx)
	for i := range ws {
		ws[i].Secret = ""
	}
	return ws, err
}

// CreateWebhook validates and stores an endpoint. An empty secret gets a
// random one; the result carries the secret (shown this once).
func (s *Service) CreateWebhook(ctx context.Context, w alert.Webhook) (alert.Webhook, error) {
	if err := w.Validate(); err != nil {
		return alert.Webhook{}, err
	}
	if w.Secret == "" {
		b := make([]byte, 32)
		rand.Read(b)
		w.Secret = hex.EncodeToString(b)
	}
	if len(w.Secret) < 16 {
		return alert.Webhook{}, fmt.Errorf("webhook secret: at least 16 characters: %w", alert.ErrInvalid)
	}
	if err := s.st.CreateWebhook(ctx, &w); err != nil {
		return alert.Webhook{}, err
	}
	return w, nil
}

// DeleteWebhook deletes an endpoint and its delivery log.
func (s *Service) DeleteWebhook(ctx context.Context, id int64) error {
	return s.st.DeleteWebhook(ctx, id)
}

// TestWebhook sends a "test" notification to an endpoint now, once (no
// retries: the admin sees at once whether it works), and returns the
// logged delivery.
func (s *Service) TestWebhook(ctx context.Context, id int64) (alert.Delivery, error) {
	w, err := s.st.Webhook(ctx, id)
	if err != nil {
		return alert.Delivery{}, err
	}
	now := s.cfg.Now().UTC()
	target := w.Target
	if target == "" {
		target = "example"
	}
	a := alert.Alert{RuleName: "test", Kind: alert.KindSiteLost, Target: target, AF: 4, Subject: "example-site",
		Status: alert.StatusTest, StartedAt: now, Summary: "test notification from anycatch: no action needed",
		Sites:  []alert.SiteShare{{Site: "example-site", BeforeProbes: 3, BeforeShare: 60}, {Site: "other-site", BeforeProbes: 2, AfterProbes: 5, BeforeShare: 40, AfterShare: 100}},
		Probes: []string{}}
	body, err := json.Marshal(s.payload(a, alert.StatusTest))
	if err != nil {
		return alert.Delivery{}, fmt.Errorf("test webhook: encode: %w", err)
	}
	d := alert.Delivery{WebhookID: w.ID, Event: alert.StatusTest, Payload: body}
	if err := s.st.CreateDelivery(ctx, &d); err != nil {
		return alert.Delivery{}, err
	}
	return s.deliver(ctx, w, d, body, 1), nil
}

// Deliveries is a webhook's delivery log, newest first.
func (s *Service) Deliveries(ctx context.Context, webhookID int64, limit int) ([]alert.Delivery, error) {
	if _, err := s.st.Webhook(ctx, webhookID); err != nil {
		return nil, err
	}
	return s.st.Deliveries(ctx, webhookID, limit)
}
