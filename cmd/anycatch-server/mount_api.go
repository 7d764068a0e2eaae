package main

import (
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/collector"
	cpg "github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/measure"
)

// rollupEvery is how often the API role rebuilds the result rollups
// (results_hourly/daily) over rollupLookback, which absorbs late uploads.
const (
	rollupEvery    = 5 * time.Minute
	rollupLookback = 3 * time.Hour
)

// mountAPI wires the api role: the REST API under /api/ and the periodic
// rollup job its latency reports and historical catchments read.
func mountAPI(env *serveEnv) error {
	cfg := api.Config{
		Store:  pgstore.New(env.DB),
		Tokens: pgstore.Tokens{Service: collector.Tokens{Store: cpg.New(env.DB)}},
		Census: pgstore.New(env.DB), // docs/census.md
		Blur:   geo.Blur,
		Log:    env.Log,
		// Edits reach the collector's identification and schedules at
		// once when it runs in this process; a separate collector picks
		// them up on its periodic refresh.
		OnChange: invalidateTargets(env),
		Live:     lazyLive{env},
	}
	cfg.AnonymousRead = env.Cfg.anonymousRead
	cfg.RatePerMin = env.Cfg.apiRate
	cfg.AnonymousRatePerMin = env.Cfg.anonRate
	proxies, err := measure.ParseTrustedProxies(env.Cfg.trustedProxies)
	if err != nil {
		return err
	}
	cfg.TrustedProxies = proxies
	cfg.ReportCacheTTL = env.Cfg.reportCache
	cfg.Alerts = alertsAPI(env)
	env.Mux.Handle("/api/", api.New(cfg))
	env.Group.Go(func() error {
		t := time.NewTicker(rollupEvery)
		defer t.Stop()
		for {
			now := time.Now()
			if err := env.DB.RollupResults(env.Ctx, now.Add(-rollupLookback), now); err != nil && env.Ctx.Err() == nil {
				env.Log.Error("rollup results", "err", err)
			}
			select {
			case <-env.Ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	return nil
}

// invalidateTargets calls env.InvalidateTargets as set when the call
// happens, so it works whatever order the roles were mounted in.
func invalidateTargets(env *serveEnv) func() {
	return func() {
		if f := env.InvalidateTargets; f != nil {
			f()
		}
	}
}
