package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/anycatch/anycatch/alert/pgstore"
	"github.com/anycatch/anycatch/alert/service"
	"github.com/anycatch/anycatch/alert/webhook"
	"github.com/anycatch/anycatch/api"
)

// alertFlags configure the alerts role.
type alertFlags struct {
	every        time.Duration
	allowPrivate bool
	publicURL    string
}

func (f *alertFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.every, "alert-interval", 10*time.Second, "how often alert rules are evaluated and the catchment metrics recomputed")
	fs.BoolVar(&f.allowPrivate, "webhook-allow-private", false, "let every webhook reach loopback, private and other special addresses (SSRF guard off; per endpoint: allow_private)")
	fs.StringVar(&f.publicURL, "public-url", "", "the server's public URL for links in alert notifications (e.g. https://anycatch.example.net)")
}

// mountAlerts wires the alerts role: continuous rule evaluation and
// webhook delivery, and the catchment metrics at /metrics/catchment (its
// own registry, so it stays apart from the process metrics at /metrics).
// Run it in one server of a deployment: two would notify twice (the
// database keeps one firing alert per rule and subject, but each server
// sends its own notifications).
func mountAlerts(env *serveEnv) error {
	if e := env.Cfg.alerts.every; e < time.Second || e > time.Hour {
		return fmt.Errorf("--alert-interval %s: want 1s to 1h", e)
	}
	svc := newAlertService(env)
	env.MetricsMount.Handle("GET /metrics/catchment", svc.MetricsHandler())
	env.Group.Go(func() error { return svc.Run(env.Ctx) })
	return nil
}

func newAlertService(env *serveEnv) *service.Service {
	return service.New(service.Config{
		Store:   pgstore.Store{DB: env.DB},
		Log:     env.Log.With("role", "alerts"),
		Every:   env.Cfg.alerts.every,
		BaseURL: env.Cfg.alerts.publicURL,
		Webhook: webhook.Options{AllowPrivate: env.Cfg.alerts.allowPrivate},
	})
}

// alertsAPI is the alerting service behind the API's /alerts endpoints:
// rules, alert history, webhooks and send-test need only the database, so
// an api-only server serves them too (without evaluating: that is the
// alerts role's job).
func alertsAPI(env *serveEnv) api.Alerts { return newAlertService(env) }

var _ api.Alerts = (*service.Service)(nil)
