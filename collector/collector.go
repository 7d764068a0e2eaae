package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/measure"
)

// Config configures a [Collector]. The zero value of every field is a
// working default.
type Config struct {
	Store  Store         // required
	Geo    *geo.Resolver // nil: no geolocation
	Logger *slog.Logger  // nil: slog.Default()
	Now    func() time.Time

	TrustedProxies []netip.Prefix // X-Forwarded-For is used only from these peers; nil: never
	Limits         Limits         // Sybil caps
	// EnrollLimiter bounds enrollment attempts per source address and per
	// IPv6 /64 (an attempt counts against both), checked before any token
	// lookup; nil: unlimited. The server passes the API's limiter
	// (*httprate.RateLimiter), see [RateLimiter].
	EnrollLimiter RateLimiter

	MaxBody         int64         // compressed upload bytes; 0 means 8 MiB
	MaxDecompressed int64         // decompressed upload bytes; 0 means 32 MiB
	MaxLine         int           // bytes per NDJSON line; 0 means 1 MiB
	MaxLines        int           // lines per upload; 0 means 10000
	MaxBatchRows    int           // rows per store batch; 0 means 5000
	MaxBatchWait    time.Duration // wait to fill a batch; 0 means 5ms
	MaxQueuedRows   int           // rows waiting for the store; 0 means 100000
	CommitTimeout   time.Duration // per store batch; 0 means 15s
	RetryAfter      time.Duration // advertised on 429/503; 0 means 5s
	KeyCacheTTL     time.Duration // probe key cache; 0 means 30s
	RefreshEvery    time.Duration // targets/rules reload; 0 means 30s
	ScheduleRefresh int           // RefreshSec handed to probes; 0 means 300
	LiveDisabled    bool          // refuse the live channel (404): probes fall back to polling
	BurstCooldown   time.Duration // least time between confirmation bursts of one measurement; 0 means 10s, negative disables bursts
	MaxBodyReads    int           // signed requests reading their body at once (all probes); 0 means 64
	MaxBodyReadsPer int           // of which one probe id; 0 means 4

	Census CensusStore // site agents and census replies; nil: no census endpoints
}

func (c Config) withDefaults() Config {
	def := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	defI := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Limits = c.Limits.withDefaults()
	def(&c.MaxBody, 8<<20)
	def(&c.MaxDecompressed, 32<<20)
	defI(&c.MaxLine, 1<<20)
	defI(&c.MaxLines, 10000)
	defI(&c.MaxBatchRows, 5000)
	defD(&c.MaxBatchWait, 5*time.Millisecond)
	defI(&c.MaxQueuedRows, 100000)
	defD(&c.CommitTimeout, 15*time.Second)
	defD(&c.RetryAfter, 5*time.Second)
	defD(&c.KeyCacheTTL, 30*time.Second)
	defD(&c.RefreshEvery, 30*time.Second)
	defI(&c.ScheduleRefresh, 300)
	defD(&c.BurstCooldown, 10*time.Second)
	return c
}

// Collector serves the probe API. Create it with [New], start its
// background work with [Collector.Run], serve [Collector.Handler].
type Collector struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	metrics *Metrics

	keys      keyCache
	verifier  measure.Verifier // signatures and the replay cache
	bodyReads bodyGate         // concurrent body reads of signed requests (authed)

	plan      atomic.Pointer[plan] // current targets and measurements
	planMu    sync.Mutex           // serialises reloads
	refreshCh chan struct{}

	live  *hub    // connected live channels
	burst burster // catchment places seen, for confirmation bursts
	od    onDemands

	queue      chan *ingestReq
	queuedRows atomic.Int64
	running    atomic.Bool
}

// New returns a collector. It does not touch the store until
// [Collector.Run] or the first request.
func New(cfg Config) (*Collector, error) {
	if cfg.Store == nil {
		return nil, errors.New("collector: config has no Store")
	}
	cfg = cfg.withDefaults()
	c := &Collector{
		cfg:       cfg,
		store:     cfg.Store,
		log:       cfg.Logger,
		metrics:   newMetrics(),
		refreshCh: make(chan struct{}, 1),
		bodyReads: bodyGate{max: cfg.MaxBodyReads, perProbe: cfg.MaxBodyReadsPer},
		// Requests, not rows, are queued; MaxQueuedRows bounds the rows.
		queue: make(chan *ingestReq, 4096),
	}
	c.keys.ttl = cfg.KeyCacheTTL
	c.live = newHub(c.metrics, c.log)
	c.metrics.queueDepth.Set(0)
	return c, nil
}

// Run loads the targets and runs the ingest pipeline and the periodic
// target reload until ctx ends. It returns after both stopped; requests
// still queued then are answered 503.
func (c *Collector) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("collector: Run called twice")
	}
	if err := c.Reload(ctx); err != nil {
		// Not fatal: the store may come up later; the refresh loop retries.
		c.log.Warn("load targets", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.pipeline(ctx) }()
	go func() { defer wg.Done(); c.refreshLoop(ctx) }()
	<-ctx.Done()
	// Hijacked live connections outlive an http.Server's Shutdown: tell
	// their probes to reconnect (to this server's successor).
	c.live.dropAll()
	wg.Wait()
	return nil
}

func (c *Collector) refreshLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.refreshCh:
		}
		if err := c.Reload(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("reload targets", "err", err)
		}
	}
}

// Invalidate asks for targets and rules to be reloaded soon; call it after
// changing targets, sites or rules (the API does). It never blocks.
func (c *Collector) Invalidate() {
	select {
	case c.refreshCh <- struct{}{}:
	default:
	}
}

// Reload loads targets and rules now. Identifiers whose target's rules did
// not change are reused.
func (c *Collector) Reload(ctx context.Context) error {
	c.planMu.Lock()
	defer c.planMu.Unlock()
	ts, err := c.store.EnabledTargets(ctx)
	if err != nil {
		return fmt.Errorf("load targets: %w", err)
	}
	old := c.plan.Load()
	p, errs := buildPlan(ts, old)
	for _, e := range errs {
		c.log.Warn("target skipped", "err", e)
	}
	c.plan.Store(p)
	if old != nil && old.version != p.version {
		// Connected probes fetch their new schedule now instead of at
		// their next poll.
		c.live.broadcast(measure.LiveMessage{Type: measure.LiveSchedule, Version: p.version})
	}
	return nil
}

// currentPlan returns the loaded plan, loading it on first use.
func (c *Collector) currentPlan(ctx context.Context) (*plan, error) {
	if p := c.plan.Load(); p != nil {
		return p, nil
	}
	if err := c.Reload(ctx); err != nil {
		return nil, err
	}
	return c.plan.Load(), nil
}

// Handler returns the probe API: the measure.Path* endpoints (the census
// ones only when Config.Census is set).
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+measure.PathEnroll, c.handleEnroll)
	mux.Handle("GET "+measure.PathSchedule, c.authed(RoleProbe, 1<<10, c.handleSchedule))
	mux.Handle("POST "+measure.PathHeartbeat, c.authed(RoleProbe, 64<<10, c.handleHeartbeat))
	mux.Handle("POST "+measure.PathResults, c.authed(RoleProbe, c.cfg.MaxBody, c.handleResults))
	mux.Handle("GET "+measure.PathLive, c.authed(RoleProbe, 1<<10, c.handleLive))
	c.mountCensus(mux)
	mux.HandleFunc("/probe/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, measure.CodeNotFound, "no such probe endpoint")
	})
	return mux
}

// Metrics returns the collector's metrics. The server registers
// Metrics().Collectors() on its own registry, which its one /metrics
// handler serves (cmd/anycatch-server metricsHandler; not public).
func (c *Collector) Metrics() *Metrics { return c.metrics }
