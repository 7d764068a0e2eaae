package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/internal/cliflag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/store"
)

// Roles a server can run; --roles picks a subset.
var allRoles = []string{"collector", "api", "web", "alerts"}

// serveEnv is what each role's wiring gets to mount its handlers.
type serveEnv struct {
	// Ctx ends when the server shuts down. Background work must stop then.
	Ctx context.Context
	DB  *store.DB
	Log *slog.Logger
	// Mux is the server's one route table. Mount under your prefix only:
	// collector "/probe/", API "/api/", web "/" (the fallback).
	Mux *http.ServeMux
	// Metrics is the server's registry; /metrics serves it (metricsHandler).
	Metrics *prometheus.Registry
	// MetricsMount serves a role's own metrics endpoint under the same
	// access rule as /metrics (admin key on Mux, keyless on
	// --metrics-listen).
	MetricsMount *metricsMount
	// Group owns background goroutines: start them with Group.Go; the
	// server waits for all of them before closing the database. A
	// returned error stops the server.
	Group *errgroup.Group
	// Cfg holds the serve flags.
	Cfg *serveConfig
	// InvalidateTargets, set by mountCollector (mounted before the api
	// role), makes the collector reload targets, sites and rules at once;
	// nil when this server runs no collector.
	InvalidateTargets func()
	// Live, set by mountCollector, runs on-demand measurements over the
	// collector's live channels; nil when this server runs no collector.
	Live api.Live
}

// roleMounts wires each role. Each function lives in mount_<role>.go,
// owned by that role's engineer: mount handlers on env.Mux there.
var roleMounts = map[string]func(env *serveEnv) error{
	"collector": mountCollector,
	"api":       mountAPI,
	"web":       mountWeb,
	"alerts":    mountAlerts,
}

type serveConfig struct {
	db              dbFlags
	log             logFlags
	listen          string
	metricsListen   string // "" : /metrics only on listen, with an admin key
	retention       time.Duration
	roles           string
	partitionsAhead int
	shutdownTimeout time.Duration

	// collector
	geoipCity, geoipASN string
	trustedProxies      string
	limits              collector.Limits
	scheduleRefresh     int
	enrollRate          int // enrollment attempts per minute per address and /64; -1: unlimited
	// api
	anonymousRead bool
	apiRate       int
	anonRate      int
	reportCache   time.Duration
	// alerts
	alerts alertFlags

	onListen func(net.Addr) // tests: told the bound address
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return serve(ctx, args, stderr, nil)
}

func serve(ctx context.Context, args []string, stderr io.Writer, onListen func(net.Addr)) error {
	cfg := serveConfig{onListen: onListen}
	fs := serveFlags(&cfg, stderr)
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := flagsFromEnv(fs, os.Getenv); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if cfg.anonRate == 0 {
		cfg.anonRate = 600
	}
	if err := cliflag.Exactly("serve", pos, 0, ""); err != nil {
		return err
	}
	roles, err := parseRoles(cfg.roles)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log, err := cfg.log.logger(stderr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Debug("garbage collector", "gogc", tuneGC())
	return runServer(ctx, cfg, roles, log)
}

// serveFlags is serve's flag set writing into cfg. docs/server-flags.md is
// generated from it (TestServeFlagsDoc), so the documented defaults are
// the code's.
func serveFlags(cfg *serveConfig, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.db.register(fs)
	cfg.log.register(fs)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&cfg.metricsListen, "metrics-listen", "", "also serve /metrics without an API key on this address (e.g. 127.0.0.1:9464; keep it off the Internet); on --listen /metrics needs an admin key")
	fs.DurationVar(&cfg.retention, "retention", 0, "drop results older than this (e.g. 2160h for 90 days); 0 keeps them forever")
	fs.StringVar(&cfg.roles, "roles", strings.Join(allRoles, ","), "comma-separated roles to run: "+strings.Join(allRoles, ", "))
	fs.IntVar(&cfg.partitionsAhead, "partitions-ahead", 7, "daily result partitions to create in advance")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long to let requests finish on SIGTERM")
	fs.StringVar(&cfg.geoipCity, "geoip-city", "", "GeoIP2/GeoLite2/DB-IP City or Country mmdb file for probe locations (see docs/geoip.md)")
	fs.StringVar(&cfg.geoipASN, "geoip-asn", "", "GeoLite2/DB-IP ASN mmdb file for probe ASNs and announced prefixes")
	fs.StringVar(&cfg.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed")
	fs.IntVar(&cfg.limits.PerAddr, "probe-cap-per-addr", 0, "most probes enrolled from one source address (0: 4, -1: unlimited)")
	fs.IntVar(&cfg.limits.Per64, "probe-cap-per-64", 0, "most probes enrolled from one IPv6 /64 (0: 8, -1: unlimited)")
	fs.IntVar(&cfg.limits.PerPrefix, "probe-cap-per-prefix", 0, "most probes enrolled from one announced prefix (0: 64, -1: unlimited)")
	fs.IntVar(&cfg.scheduleRefresh, "schedule-refresh", 0, "seconds between probes' schedule fetches (0: 300)")
	fs.IntVar(&cfg.enrollRate, "enroll-rate", 0, "enrollment attempts per minute per source address and per IPv6 /64 (0: 30, -1: unlimited)")
	fs.BoolVar(&cfg.anonymousRead, "anonymous-read", false, "allow API reads (and the web UI) without an API key")
	fs.IntVar(&cfg.apiRate, "api-rate", 0, "requests per minute per API key without a limit of its own (0: 600)")
	fs.IntVar(&cfg.anonRate, "anonymous-rate", 0, "anonymous API requests per minute per client address (0: 600)")
	fs.DurationVar(&cfg.reportCache, "report-cache", 3*time.Second, "how long identical catchment and latency reports are served from memory (with ETag/304); 0 disables")
	cfg.alerts.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: anycatch-server [serve] [flags]")
		fmt.Fprintln(stderr, "\nRuns the collector (/probe/), API (/api/), web UI (/), /metrics (admin key) and /healthz on one listener;")
		fmt.Fprintln(stderr, "--metrics-listen adds a separate, keyless /metrics listener for a local scraper.")
		fmt.Fprintln(stderr, "The alerts role evaluates alert rules, sends webhooks and serves /metrics/catchment (docs/alerts.md).")
		fmt.Fprintln(stderr, "Without a database URL a private PostgreSQL cluster runs in <data-dir>/postgres.")
		fmt.Fprintln(stderr, "Every flag can also be set as ANYCATCH_<FLAG> in the environment (e.g. ANYCATCH_LISTEN,")
		fmt.Fprintln(stderr, "ANYCATCH_ANONYMOUS_READ=true); flags win. ANYCATCH_BOOTSTRAP_ADMIN_KEY and")
		fmt.Fprintln(stderr, "ANYCATCH_BOOTSTRAP_TOKEN pre-create an admin API key and a multi-use enrollment token")
		fmt.Fprintln(stderr, "with the given secrets (for automated deployments such as docker-compose.yml).")
		fmt.Fprintln(stderr, "\nflags:")
		fs.PrintDefaults()
	}
	return fs
}

func parseRoles(s string) ([]string, error) {
	var roles []string
	for r := range strings.SplitSeq(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(allRoles, r) {
			return nil, fmt.Errorf("unknown role %q (want %s)", r, strings.Join(allRoles, ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("no roles: --roles needs at least one of " + strings.Join(allRoles, ", "))
	}
	return roles, nil
}

func runServer(ctx context.Context, cfg serveConfig, roles []string, log *slog.Logger) (err error) {
	cfg.db.own = true
	db, err := openDatabase(ctx, cfg.db, store.Options{}, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer func() {
		if cerr := db.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("serve: listen: %w", err)
	}
	defer ln.Close()

	g, gctx := errgroup.WithContext(ctx)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", healthHandler(db.DB))
	metrics, err := mountMetrics(gctx, g, cfg, db.DB, mux, reg, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := bootstrapSecrets(ctx, db.DB, os.Getenv, log); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	env := &serveEnv{Ctx: gctx, DB: db.DB, Log: log, Mux: mux, Metrics: reg, MetricsMount: metrics, Group: g, Cfg: &cfg}
	for _, r := range roles {
		if err := roleMounts[r](env); err != nil {
			return fmt.Errorf("serve: mount %s: %w", r, err)
		}
	}
	if slices.Contains(roles, "collector") {
		// The writer keeps partitions ahead and applies retention: once
		// before serving, then hourly.
		maintainOnce(ctx, db.DB, cfg, log)
		g.Go(func() error { maintainPartitions(gctx, db.DB, cfg, log); return nil })
	}

	srv := &http.Server{
		// Every read is bounded: headers in 10 s, a request body in 30 s
		// (boundBodyReads; the collector extends it for a large upload by
		// its size), idle keep-alive connections in 2 min. There is no
		// ReadTimeout: its expiry would cancel the context of a long
		// stream (SSE, exports) through net/http's background read.
		Handler:           boundBodyReads(mux, 30*time.Second),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return gctx },
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
			return fmt.Errorf("shutdown http: %w", err)
		}
		return nil
	})
	log.Info("anycatch server listening", "version", version, "addr", ln.Addr().String(), "roles", strings.Join(roles, ","),
		"embedded_db", db.cluster != nil)
	if cfg.onListen != nil {
		cfg.onListen(ln.Addr())
	}
	err = g.Wait()
	log.Info("anycatch server stopped")
	return err
}

// serveEnvVars is how serve's flags are read from the environment:
// ANYCATCH_<FLAG> (cliflag.EnvName), so containers and systemd units can
// configure the server; the database URL is the conventional DATABASE_URL
// (also the flag's default).
var serveEnvVars = cliflag.Env{Names: map[string]string{"database-url": "DATABASE_URL"}}

// flagsFromEnv sets every flag not given on the command line from the
// environment (serveEnvVars).
func flagsFromEnv(fs *flag.FlagSet, getenv func(string) string) error {
	return serveEnvVars.Apply(fs, getenv)
}

// healthHandler answers 200 when the database answers, 503 otherwise.
func healthHandler(db *store.DB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		body := map[string]string{"status": "ok", "database": "ok"}
		code := http.StatusOK
		if err := db.Ping(ctx); err != nil {
			body = map[string]string{"status": "unavailable", "database": "unreachable"}
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
}

// maintainPartitions runs partition upkeep hourly until ctx ends.
func maintainPartitions(ctx context.Context, db *store.DB, cfg serveConfig, log *slog.Logger) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		maintainOnce(ctx, db, cfg, log)
	}
}

// maintainOnce creates partitions ahead and applies retention. Failures are
// logged and retried on the next run; ingest creates a missing partition
// on demand anyway.
func maintainOnce(ctx context.Context, db *store.DB, cfg serveConfig, log *slog.Logger) {
	mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	created, dropped, err := db.MaintainPartitions(mctx, time.Now(), cfg.partitionsAhead, cfg.retention)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Error("partition maintenance failed", "err", err)
	case len(created)+len(dropped) > 0:
		log.Info("partition maintenance", "created", created, "dropped", dropped)
	}
}

// boundBodyReads gives every request with a body limit to send it: the
// connection's read deadline is set when the handler starts and cleared
// once the body has been read to its end, so a client trickling a body is
// cut off while long responses (streams, exports) are not.
func boundBodyReads(h http.Handler, limit time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(limit)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline once its body reaches EOF.
type deadlineBody struct {
	io.ReadCloser
	clear func()
	done  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.clear()
	}
	return n, err
}
