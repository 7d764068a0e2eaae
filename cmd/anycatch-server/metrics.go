package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/store"
)

// metricsHandler is the one /metrics handler: it serves the server-wide
// registry (serveEnv.Metrics) that every role registers its collectors
// on. Both places /metrics is served use it.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// metricsMount serves metrics endpoints. On the main listener, which
// faces the Internet behind the proxy, each needs an admin API key
// (Authorization: Bearer, as Prometheus' scrape config sends it): the
// metrics name probes' outcomes, the catchment and the server's load.
// With --metrics-listen each is also served, without a key, on that
// separate address, meant for loopback or a monitoring network (see
// deploy/README.md).
type metricsMount struct {
	main, side *http.ServeMux // side: nil without --metrics-listen
	admin      func(http.Handler) http.Handler
	addr       net.Addr // the side listener's bound address, or nil
}

// Handle serves h at pattern under the metrics access rule.
func (m *metricsMount) Handle(pattern string, h http.Handler) {
	m.main.Handle(pattern, m.admin(h))
	if m.side != nil {
		m.side.Handle(pattern, h)
	}
}

// mountMetrics serves the server-wide registry at /metrics (metricsMount
// says who may read it) and returns the mount, for roles that serve
// metrics of their own (the alerts role's /metrics/catchment).
func mountMetrics(ctx context.Context, g *errgroup.Group, cfg serveConfig, db *store.DB, mux *http.ServeMux, reg *prometheus.Registry, log *slog.Logger) (*metricsMount, error) {
	// The admin check is the API's own (key lookup, revocation, rate
	// limit), whether or not this server runs the api role.
	keys := api.New(api.Config{Store: pgstore.New(db), Log: log})
	m := &metricsMount{main: mux, admin: keys.RequireAdmin}
	if cfg.metricsListen != "" {
		ln, err := net.Listen("tcp", cfg.metricsListen)
		if err != nil {
			return nil, fmt.Errorf("metrics listen: %w", err)
		}
		m.side, m.addr = http.NewServeMux(), ln.Addr()
		srv := &http.Server{Handler: m.side, ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve metrics: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
		log.Info("metrics listening", "addr", ln.Addr().String())
	}
	m.Handle("GET /metrics", metricsHandler(reg))
	return m, nil
}
