package main

import (
	"fmt"
	"os"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/geo"
)

// mountCollector wires the collector role: the probe API under "/probe/",
// its metrics on the server registry, its ingest pipeline and target
// reload in env.Group.
//
// GeoIP databases and trusted proxies come from the environment until
// serve grows flags for them: ANYCATCH_GEOIP_CITY, ANYCATCH_GEOIP_ASN (mmdb
// paths, see docs/geoip.md) and ANYCATCH_TRUSTED_PROXIES (comma-separated
// CIDRs whose X-Forwarded-For is believed).
func mountCollector(env *serveEnv) error {
	g, err := geo.Open(os.Getenv("ANYCATCH_GEOIP_CITY"), os.Getenv("ANYCATCH_GEOIP_ASN"))
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	proxies, err := collector.ParseTrustedProxies(os.Getenv("ANYCATCH_TRUSTED_PROXIES"))
	if err != nil {
		g.Close()
		return fmt.Errorf("collector: %w", err)
	}
	c, err := collector.New(collector.Config{
		Store:          pgstore.New(env.DB),
		Geo:            g,
		Logger:         env.Log.With("role", "collector"),
		TrustedProxies: proxies,
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
	env.Mux.Handle("/probe/", c.Handler())
	env.Group.Go(func() error {
		defer g.Close()
		return c.Run(env.Ctx)
	})
	return nil
}
