package api

import (
	"context"
	_ "embed"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the embedded OpenAPI 3.1 document served at
// /api/v1/openapi.json.
func OpenAPI() []byte { return openAPI }

// Config configures a [Server]. Only Store is required.
type Config struct {
	Store  Store
	Tokens Tokens      // enrollment token service; nil answers /admin/tokens with unavailable
	Alerts Alerts      // alerting service; nil answers /alerts… with unavailable
	Census CensusStore // census rounds and replies; nil answers the census endpoints with unavailable

	// AnonymousRead lets requests without a key use the read endpoints.
	AnonymousRead bool
	// RatePerMin is the per-key limit when a key has none; 0 means 600.
	RatePerMin int
	// AnonymousRatePerMin limits anonymous reads per client IP; 0 means 60.
	AnonymousRatePerMin int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client an anonymous rate limit keys on (measure.ClientAddr);
	// nil: the TCP peer, so behind a proxy set it or every anonymous
	// client shares one bucket.
	TrustedProxies []netip.Prefix

	// Blur turns a probe's stored position into the published one (wire
	// geo.Blur here). Nil rounds to 0.1° (about 11 km).
	Blur func(probe string, lat, lon float64) (float64, float64)
	// Regions is the default region set for group=region: region name ->
	// ISO country codes. A request's regions parameter overrides it.
	Regions map[string][]string

	// OnChange, when set, is called after every successful change of a
	// target, its sites or its rules, so identification and schedules can
	// reload at once (wire the collector's Invalidate here). It must not
	// block.
	OnChange func()

	// ReportCacheTTL, when positive, caches catchment, GeoJSON and
	// latency responses per (path, query, Accept) for that long, with
	// ETag/If-None-Match (see respcache.go). 2-5 s suits dashboards that
	// poll; 0 disables it.
	ReportCacheTTL time.Duration

	// Live runs on-demand measurements (POST /measurements); nil
	// answers those endpoints with unavailable.
	Live Live
	// MeasureConcurrent caps on-demand measurements running at once per
	// API key; 0 means 3. MeasurePerHour caps those started per hour per
	// key; 0 means 60.
	MeasureConcurrent int
	MeasurePerHour    int
	// Resolve looks up the addresses of a hostname an admin asks to
	// measure (POST /measurements with "address"); nil means the system
	// resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)

	Log *slog.Logger     // nil discards
	Now func() time.Time // nil means time.Now
}

// Server serves the API. Create it with [New].
type Server struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	now     func() time.Time
	limiter *httprate.RateLimiter
	handler http.Handler
	cache   *respCache // nil without Config.ReportCacheTTL
	quotas  quotas     // on-demand measurements per key
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.RatePerMin == 0 {
		cfg.RatePerMin = 600
	}
	if cfg.AnonymousRatePerMin == 0 {
		cfg.AnonymousRatePerMin = 60
	}
	if cfg.MeasureConcurrent <= 0 {
		cfg.MeasureConcurrent = 3
	}
	if cfg.MeasurePerHour <= 0 {
		cfg.MeasurePerHour = 60
	}
	if cfg.Blur == nil {
		cfg.Blur = roundBlur
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Log, now: cfg.Now}
	if s.log == nil {
		s.log = discardLog
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.cache = newRespCache(cfg.ReportCacheTTL, s.now)
	s.limiter = httprate.NewRateLimiter(cfg.RatePerMin, time.Minute)
	s.handler = s.routes()
	return s
}

// ServeHTTP serves every path under /api/v1/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// changed tells Config.OnChange that targets, sites or rules changed.
func (s *Server) changed() {
	s.cache.clear()
	if s.cfg.OnChange != nil {
		s.cfg.OnChange()
	}
}

func roundBlur(_ string, lat, lon float64) (float64, float64) {
	return math.Round(lat*10) / 10, math.Round(lon*10) / 10
}

func withRequestLimit(ctx context.Context, n int) context.Context {
	return httprate.WithRequestLimit(ctx, n)
}

// Routes returns the server's chi route tree, for tests and tools that walk
// it (chi.Walk).
func Routes(s *Server) chi.Routes { return s.handler.(chi.Routes) }
