package main

import (
	"fmt"
	"time"

	"github.com/go-chi/httprate"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/store"
)

// defaultEnrollRate is --enroll-rate's default: enrollment attempts per
// minute per source address and per IPv6 /64. An honest volunteer
// enrolls once; a lab or a NAT enrolling a few dozen probes still fits.
const defaultEnrollRate = 30

// mountCollector wires the collector role: the probe API under "/probe/",
// its metrics on the server registry, its ingest pipeline and target
// reload in env.Group.
func mountCollector(env *serveEnv) error {
	g, err := geo.Open(env.Cfg.geoipCity, env.Cfg.geoipASN)
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	proxies, err := collector.ParseTrustedProxies(env.Cfg.trustedProxies)
	if err != nil {
		g.Close()
		return fmt.Errorf("collector: %w", err)
	}
	var enrollLimit collector.RateLimiter
	switch rate := env.Cfg.enrollRate; {
	case rate == 0:
		enrollLimit = httprate.NewRateLimiter(defaultEnrollRate, time.Minute)
	case rate > 0:
		enrollLimit = httprate.NewRateLimiter(rate, time.Minute)
	}
	c, err := collector.New(collector.Config{
		EnrollLimiter:   enrollLimit,
		Store:           pgstore.New(env.DB),
		Census:          pgstore.New(env.DB), // site agents (docs/census.md)
		Geo:             g,
		Logger:          env.Log.With("role", "collector"),
		TrustedProxies:  proxies,
		Limits:          env.Cfg.limits,
		ScheduleRefresh: env.Cfg.scheduleRefresh,
		// Targets and rules edited through the API or CLI reach schedules
		// and identification within seconds; the query is small.
		RefreshEvery: 5 * time.Second,
	})
	if err != nil {
		g.Close()
		return err
	}
	for _, m := range c.Metrics().Collectors() {
		if err := env.Metrics.Register(m); err != nil {
			g.Close()
			return fmt.Errorf("collector: metrics: %w", err)
		}
	}
	env.InvalidateTargets = c.Invalidate
	env.Live = liveAdapter{c}
	env.Mux.Handle("/probe/", c.Handler())
	env.Group.Go(func() error {
		defer g.Close()
		return c.Run(env.Ctx)
	})
	// Edits by any process on this database (CLI, another server) reach
	// this collector, and through its live channels every probe, at once;
	// so does disabling a probe, whose live channel closes.
	env.Group.Go(func() error {
		return env.DB.ListenChanges(env.Ctx, store.ChangeHandlers{Targets: c.Invalidate, Probe: c.ProbeChanged})
	})
	return nil
}
