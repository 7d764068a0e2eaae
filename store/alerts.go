package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AlertRuleRow is one stored alert rule. Definition is the rule's JSON as
// package alert defines and validates it; the store only keeps it.
type AlertRuleRow struct {
	ID         int64
	TargetID   int
	Target     string // target name
	Enabled    bool
	Definition []byte
	CreatedAt  time.Time
}

// CreateAlertRule stores a rule for the target named r.Target and sets its
// ID, TargetID and CreatedAt. ErrNotFound when there is no such target.
func (db *DB) CreateAlertRule(ctx context.Context, r *AlertRuleRow) error {
	err := db.pool.QueryRow(ctx, `INSERT INTO alert_rules (target_id, enabled, definition)
		SELECT id, $2, $3 FROM targets WHERE name = $1
		RETURNING id, target_id, created_at`, r.Target, r.Enabled, r.Definition).Scan(&r.ID, &r.TargetID, &r.CreatedAt)
	if err != nil {
		return fmt.Errorf("create alert rule: %w", classify(err))
	}
	return nil
}

// ListAlertRules returns the rules of the target named target ("" every
// target), oldest first.
func (db *DB) ListAlertRules(ctx context.Context, target string) ([]AlertRuleRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT r.id, r.target_id, t.name, r.enabled, r.definition, r.created_at
		FROM alert_rules r JOIN targets t ON t.id = r.target_id
		WHERE $1 = '' OR t.name = $1 ORDER BY r.id`, target)
	if err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AlertRuleRow, error) {
		var r AlertRuleRow
		err := row.Scan(&r.ID, &r.TargetID, &r.Target, &r.Enabled, &r.Definition, &r.CreatedAt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	return out, nil
}

// SetAlertRuleEnabled enables or disables a rule; disabling resolves its
// firing alerts at once. ErrNotFound when absent.
func (db *DB) SetAlertRuleEnabled(ctx context.Context, id int64, enabled bool) error {
	var n int64
	err := db.pool.QueryRow(ctx, `WITH r AS (
			UPDATE alert_rules SET enabled = $2 WHERE id = $1 RETURNING id
		), a AS (
			UPDATE alerts SET status = 'resolved', resolved_at = now(),
				body = body || jsonb_build_object('status', 'resolved', 'resolved_at', now(), 'summary', (body->>'summary') || ' (rule disabled)')
			WHERE rule_id IN (SELECT id FROM r) AND NOT $2 AND status = 'firing' RETURNING id
		)
		SELECT count(*) FROM r`, id, enabled).Scan(&n)
	if err != nil {
		return fmt.Errorf("set alert rule enabled: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("alert rule %d: %w", id, ErrNotFound)
	}
	return nil
}

// SetWebhookEnabled enables or disables a webhook. ErrNotFound when absent.
func (db *DB) SetWebhookEnabled(ctx context.Context, id int64, enabled bool) error {
	tag, err := db.pool.Exec(ctx, `UPDATE webhooks SET enabled = $2 WHERE id = $1`, id, enabled)
	if err != nil {
		return fmt.Errorf("set webhook enabled: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %d: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteAlertRule deletes a rule and its alerts. ErrNotFound when absent.
func (db *DB) DeleteAlertRule(ctx context.Context, id int64) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM alert_rules WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete alert rule: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete alert rule %d: %w", id, ErrNotFound)
	}
	return nil
}

// CatchmentCount is one group of a target's current catchment: the tracks
// of one address family in one state (and, for state site, at one site)
// with their median RTT.
type CatchmentCount struct {
	AF        int
	State     string
	Site      string // "" unless State is site
	Probes    int
	MedianRTT *float64 // ms; nil when no track has an RTT
}

// CatchmentCounts counts a target's current catchment (catchment_latest,
// tracks observed since since) by address family, state and site. It reads
// the collector's state table, never raw results.
func (db *DB) CatchmentCounts(ctx context.Context, targetID int, since time.Time) ([]CatchmentCount, error) {
	rows, err := db.pool.Query(ctx, `SELECT af, state, CASE WHEN state = 'site' THEN coalesce(site, '') ELSE '' END AS s,
			count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY rtt_ms)
		FROM catchment_latest WHERE target_id = $1 AND observed_at >= $2
		GROUP BY af, state, s ORDER BY af, state, s`, targetID, since)
	if err != nil {
		return nil, fmt.Errorf("catchment counts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CatchmentCount, error) {
		var c CatchmentCount
		var af int16
		var n int64
		err := row.Scan(&af, &c.State, &c.Site, &n, &c.MedianRTT)
		c.AF, c.Probes = int(af), int(n)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("catchment counts: %w", err)
	}
	return out, nil
}

// AlertRow is one stored alert. Body is the alert's JSON as notified.
type AlertRow struct {
	ID         int64
	RuleID     int64
	TargetID   int
	Target     string
	AF         int
	Subject    string
	Status     string // firing or resolved
	StartedAt  time.Time
	ResolvedAt *time.Time
	Body       []byte
}

// OpenAlert stores a firing alert and sets its ID. When the (rule, af,
// subject) already has a firing alert (another server fired it, or a
// restart), that alert's ID is returned with ErrConflict.
func (db *DB) OpenAlert(ctx context.Context, a *AlertRow) error {
	err := db.pool.QueryRow(ctx, `INSERT INTO alerts (rule_id, target_id, af, subject, status, started_at, body)
		VALUES ($1, $2, $3, $4, 'firing', $5, $6)
		ON CONFLICT (rule_id, af, subject) WHERE status = 'firing' DO NOTHING RETURNING id`,
		a.RuleID, a.TargetID, a.AF, a.Subject, a.StartedAt, a.Body).Scan(&a.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		if err := db.pool.QueryRow(ctx, `SELECT id FROM alerts WHERE rule_id = $1 AND af = $2 AND subject = $3 AND status = 'firing'`,
			a.RuleID, a.AF, a.Subject).Scan(&a.ID); err != nil {
			return fmt.Errorf("open alert: %w", classify(err))
		}
		return fmt.Errorf("open alert: already firing as %d: %w", a.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("open alert: %w", classify(err))
	}
	return nil
}

// ResolveAlert closes a firing alert at at. patch (a JSON object) is
// merged into its body, which otherwise keeps what was notified when it
// fired (the history shows what happened, not the calm after).
// ErrNotFound when it is not firing (any more).
func (db *DB) ResolveAlert(ctx context.Context, id int64, at time.Time, patch []byte) error {
	tag, err := db.pool.Exec(ctx, `UPDATE alerts SET status = 'resolved', resolved_at = $2, body = body || $3::jsonb
		WHERE id = $1 AND status = 'firing'`, id, at, patch)
	if err != nil {
		return fmt.Errorf("resolve alert: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("resolve alert %d: %w", id, ErrNotFound)
	}
	return nil
}

// AlertQuery filters ListAlerts; zero fields do not filter.
type AlertQuery struct {
	Target string
	Status string
	Limit  int // 0 means 100, at most 1000
}

// ListAlerts returns alerts, newest first.
func (db *DB) ListAlerts(ctx context.Context, q AlertQuery) ([]AlertRow, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 1000)
	rows, err := db.pool.Query(ctx, `SELECT a.id, a.rule_id, a.target_id, t.name, a.af, a.subject, a.status, a.started_at, a.resolved_at, a.body
		FROM alerts a JOIN targets t ON t.id = a.target_id
		WHERE ($1 = '' OR t.name = $1) AND ($2 = '' OR a.status = $2)
		ORDER BY a.started_at DESC, a.id DESC LIMIT $3`, q.Target, q.Status, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AlertRow, error) {
		var a AlertRow
		var af int16
		err := row.Scan(&a.ID, &a.RuleID, &a.TargetID, &a.Target, &af, &a.Subject, &a.Status, &a.StartedAt, &a.ResolvedAt, &a.Body)
		a.AF = int(af)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// WebhookRow is one stored webhook endpoint.
type WebhookRow struct {
	ID           int64
	Name         string
	URL          string
	Secret       string
	AllowPrivate bool
	Target       string // target name; "" for every target
	MaxAttempts  int
	Enabled      bool
	CreatedAt    time.Time
}

// CreateWebhook stores w and sets its ID and CreatedAt. ErrNotFound when
// w.Target names no target.
func (db *DB) CreateWebhook(ctx context.Context, w *WebhookRow) error {
	err := db.pool.QueryRow(ctx, `INSERT INTO webhooks (name, url, secret, allow_private, target_id, max_attempts, enabled)
		SELECT $1, $2, $3, $4, t.id, $6, $7 FROM (SELECT NULL::integer AS id WHERE $5 = ''
			UNION ALL SELECT id FROM targets WHERE name = $5 AND $5 <> '') t
		RETURNING id, created_at`, w.Name, w.URL, w.Secret, w.AllowPrivate, w.Target, w.MaxAttempts, w.Enabled).Scan(&w.ID, &w.CreatedAt)
	if err != nil {
		return fmt.Errorf("create webhook: %w", classify(err))
	}
	return nil
}

const webhookColumns = `w.id, w.name, w.url, w.secret, w.allow_private, coalesce(t.name, ''), w.max_attempts, w.enabled, w.created_at`

func scanWebhook(row pgx.CollectableRow) (WebhookRow, error) {
	var w WebhookRow
	err := row.Scan(&w.ID, &w.Name, &w.URL, &w.Secret, &w.AllowPrivate, &w.Target, &w.MaxAttempts, &w.Enabled, &w.CreatedAt)
	return w, err
}

// ListWebhooks returns every webhook, oldest first (with secrets: callers
// showing them to users must blank them).
func (db *DB) ListWebhooks(ctx context.Context) ([]WebhookRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks w LEFT JOIN targets t ON t.id = w.target_id ORDER BY w.id`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// GetWebhook returns one webhook. ErrNotFound when absent.
func (db *DB) GetWebhook(ctx context.Context, id int64) (WebhookRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks w LEFT JOIN targets t ON t.id = w.target_id WHERE w.id = $1`, id)
	if err != nil {
		return WebhookRow{}, fmt.Errorf("get webhook: %w", err)
	}
	w, err := pgx.CollectExactlyOneRow(rows, scanWebhook)
	if err != nil {
		return WebhookRow{}, fmt.Errorf("get webhook %d: %w", id, classify(err))
	}
	return w, nil
}

// DeleteWebhook deletes a webhook and its delivery log.
func (db *DB) DeleteWebhook(ctx context.Context, id int64) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete webhook %d: %w", id, ErrNotFound)
	}
	return nil
}

// DeliveryRow is one entry of a webhook's delivery log.
type DeliveryRow struct {
	ID          int64
	WebhookID   int64
	AlertID     *int64
	Event       string
	State       string
	Attempts    int
	LastStatus  *int
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeliveredAt *time.Time
	Payload     []byte // the body sent; only PendingDeliveries reads it back
}

// CreateDelivery logs a pending notification with its payload and sets its
// ID and times.
func (db *DB) CreateDelivery(ctx context.Context, d *DeliveryRow) error {
	if d.Payload == nil {
		d.Payload = []byte{}
	}
	err := db.pool.QueryRow(ctx, `INSERT INTO webhook_deliveries (webhook_id, alert_id, event, state, payload)
		VALUES ($1, $2, $3, 'pending', $4) RETURNING id, state, created_at, updated_at`,
		d.WebhookID, d.AlertID, d.Event, d.Payload).Scan(&d.ID, &d.State, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return fmt.Errorf("create delivery: %w", classify(err))
	}
	return nil
}

// UpdateDelivery records an attempt's outcome: state, attempts, last
// status and error, delivered_at.
func (db *DB) UpdateDelivery(ctx context.Context, d *DeliveryRow) error {
	err := db.pool.QueryRow(ctx, `UPDATE webhook_deliveries SET state = $2, attempts = $3, last_status = $4, last_error = $5,
			delivered_at = $6, updated_at = now() WHERE id = $1 RETURNING updated_at`,
		d.ID, d.State, d.Attempts, d.LastStatus, d.LastError, d.DeliveredAt).Scan(&d.UpdatedAt)
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, classify(err))
	}
	return nil
}

// PendingDeliveries returns the deliveries still pending (a server
// stopped while retrying them), oldest first, with their payloads.
func (db *DB) PendingDeliveries(ctx context.Context) ([]DeliveryRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, webhook_id, alert_id, event, state, attempts, last_status, last_error,
			created_at, updated_at, delivered_at, payload
		FROM webhook_deliveries WHERE state = 'pending' ORDER BY id LIMIT 10000`)
	if err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeliveryRow, error) {
		var d DeliveryRow
		err := row.Scan(&d.ID, &d.WebhookID, &d.AlertID, &d.Event, &d.State, &d.Attempts, &d.LastStatus, &d.LastError,
			&d.CreatedAt, &d.UpdatedAt, &d.DeliveredAt, &d.Payload)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	return out, nil
}

// ListDeliveries returns a webhook's newest deliveries first, at most limit
// (0: 50, at most 1000).
func (db *DB) ListDeliveries(ctx context.Context, webhookID int64, limit int) ([]DeliveryRow, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := db.pool.Query(ctx, `SELECT id, webhook_id, alert_id, event, state, attempts, last_status, last_error, created_at, updated_at, delivered_at
		FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2`, webhookID, min(limit, 1000))
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeliveryRow, error) {
		var d DeliveryRow
		err := row.Scan(&d.ID, &d.WebhookID, &d.AlertID, &d.Event, &d.State, &d.Attempts, &d.LastStatus, &d.LastError, &d.CreatedAt, &d.UpdatedAt, &d.DeliveredAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}
