// Package agent is the probe's long-running loop: it loads or creates the
// probe's identity, enrolls once, keeps the schedule fresh, runs each
// measurement on its interval under a local packet-rate ceiling and
// concurrency limit that no schedule can raise, spools every result to disk
// first, and uploads the spool in batches with backoff.
//
// Safety policy: targets in special-purpose ranges (private, loopback,
// link-local, CGNAT, multicast, documentation, benchmarking, …; see
// [CheckTarget]) are refused unless AllowPrivate is set. A refused
// measurement is never run and produces no result — uploading placeholder
// results would pollute catchment data — instead it is logged once per
// schedule and listed in the status file with its reason.
//
// Live channel (live.go): unless NoLive, the agent also holds a WebSocket
// to the collector, which pushes schedule changes (fetched at once) and
// measure-now nudges (run out of turn, results uploaded at once), and is
// redialled with jittered backoff; schedule polling continues regardless.
//
// Goroutines: Run owns all of them (scheduler, workers, uploader, schedule
// fetcher, heartbeat, status writer, live channel) and returns only after
// every one has stopped.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/spool"
	"github.com/anycatch/anycatch/probe/upload"
)

// Runner runs one measurement and returns its result; it must return by
// ctx's deadline. The agent fills in the result's id, measurement, kind,
// time, destination and family when the runner leaves them empty.
type Runner func(ctx context.Context, m measure.Measurement) measure.Result

// Config configures an Agent. Zero values are safe defaults; Runner and
// StateDir are required, Collector and EnrollToken until enrolled.
type Config struct {
	Collector   string // collector URL; may be omitted once enrolled
	EnrollToken string // one-time token; needed only until enrolled
	StateDir    string // identity, spool, status; created 0700
	Runner      Runner

	Version      string
	Capabilities measure.Capabilities
	Limitations  []string // human-readable things this host cannot do, shown in status
	Location     *measure.Location

	AllowPrivate  bool // measure special-purpose ranges (labs and tests only)
	MaxPPS        int  // packet ceiling; 0 means 50
	MaxConcurrent int  // measurements at once; 0 means 4

	MinInterval    time.Duration // shortest accepted measurement interval; 0 means 60 s
	MinRefresh     time.Duration // shortest schedule refresh; 0 means 30 s
	UploadEvery    time.Duration // upload (and retry) period while results wait; 0 means 30 s (a schedule's UploadEvery wins if set)
	UploadDelay    time.Duration // wait after a new result before uploading, to batch results that finish together; 0 means 1 s
	UploadMinGap   time.Duration // shortest time between two uploads; 0 means 5 s
	HeartbeatEvery time.Duration // 0 means 5 min
	StatusEvery    time.Duration // 0 means 15 s
	BatchMax       int           // results per upload; 0 means 500
	BatchBytes     int           // bytes per upload before compression; 0 means 1 MiB
	MaxBackoff     time.Duration // cap on retry delays without Retry-After; 0 means 5 min
	DrainTimeout   time.Duration // wait for in-flight runs at shutdown; 0 means 30 s
	FinalUpload    time.Duration // last upload attempt at shutdown; 0 means 5 s

	NoLive          bool          // never open the live channel; poll only
	LiveMaxBackoff  time.Duration // cap on live reconnect delays; 0 means 1 min
	LiveUnsupported time.Duration // wait before retrying a collector that does not offer the channel; 0 means 10 min
	FirstRunSpread  time.Duration // a measurement new to the schedule first runs within this; 0 means 3 s

	Spool      spool.Options
	HTTPClient *http.Client     // nil means upload's default
	Now        func() time.Time // nil means time.Now
	Logger     *slog.Logger     // nil means slog.Default()
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxPPS <= 0 {
		c.MaxPPS = 50
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 4
	}
	def(&c.MinInterval, 60*time.Second)
	def(&c.MinRefresh, 30*time.Second)
	def(&c.UploadEvery, 30*time.Second)
	def(&c.UploadDelay, time.Second)
	def(&c.UploadMinGap, 5*time.Second)
	def(&c.HeartbeatEvery, 5*time.Minute)
	def(&c.StatusEvery, 15*time.Second)
	def(&c.MaxBackoff, 5*time.Minute)
	def(&c.DrainTimeout, 30*time.Second)
	def(&c.FinalUpload, 5*time.Second)
	def(&c.LiveMaxBackoff, time.Minute)
	def(&c.LiveUnsupported, 10*time.Minute)
	def(&c.FirstRunSpread, 3*time.Second)
	if c.BatchMax <= 0 {
		c.BatchMax = 500
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Agent is one probe. Create with New, start with Run.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	id     *upload.Identity
	client *upload.Client
	spool  *spool.Spool
	bucket *bucket

	schedules chan []measure.Measurement // fetcher -> scheduler, latest wins
	kick      chan struct{}              // workers -> uploader: a full batch is waiting
	spooled   chan struct{}              // workers -> uploader: a new result is waiting
	urgent    chan struct{}              // workers -> uploader: a nudged result is waiting
	fetchNow  chan struct{}              // live channel -> fetcher: the schedule changed
	nudges    chan measure.LiveMessage   // live channel -> scheduler: run these ids now
	liveOut   chan measure.LiveMessage   // scheduler -> live channel: refusals to report

	mu          sync.Mutex
	lastPlace   map[string]string // msm -> identity answer of its last run (identity/dns kinds)
	st          Status
	uploadEvery time.Duration
	refresh     time.Duration // current schedule's refresh interval; 0 until one is loaded
	backoff     backoff
	batchMax    int
}

// New validates cfg. It touches nothing on disk or the network.
func New(cfg Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	if cfg.StateDir == "" {
		return nil, errors.New("agent: state directory required")
	}
	if cfg.Runner == nil {
		return nil, errors.New("agent: runner required")
	}
	a := &Agent{
		cfg:       cfg,
		log:       cfg.Logger,
		bucket:    newBucket(cfg.MaxPPS, cfg.Now),
		schedules: make(chan []measure.Measurement, 1),
		kick:      make(chan struct{}, 1),
		spooled:   make(chan struct{}, 1),
		urgent:    make(chan struct{}, 1),
		fetchNow:  make(chan struct{}, 1),
		nudges:    make(chan measure.LiveMessage, 8),
		liveOut:   make(chan measure.LiveMessage, 16),
		batchMax:  cfg.BatchMax,
	}
	a.uploadEvery = cfg.UploadEvery
	a.backoff = backoff{max: cfg.MaxBackoff}
	a.st = Status{
		State: "enrolling", Collector: cfg.Collector, Version: cfg.Version, PID: os.Getpid(),
		StatusEvery: cfg.StatusEvery.Seconds(), AllowPrivate: cfg.AllowPrivate, MaxPPS: cfg.MaxPPS,
		MaxConc: cfg.MaxConcurrent, Capabilities: cfg.Capabilities, Limitations: cfg.Limitations,
		Runs: map[measure.Kind]*KindCounts{},
	}
	return a, nil
}

// Run runs the probe until ctx ends, then shuts down: no new runs start,
// in-flight runs get DrainTimeout to finish and spool their results, one
// last upload is tried for FinalUpload, and the status file says
// "stopped". It returns an error only if the probe cannot start (state
// directory, identity, enrollment refused).
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(a.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := os.Chmod(a.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	sp, err := spool.Open(filepath.Join(a.cfg.StateDir, SpoolDir), a.cfg.Spool)
	if err != nil {
		return err
	}
	a.spool = sp
	defer sp.Close()
	a.mu.Lock()
	a.st.Started = a.cfg.Now().UTC()
	a.mu.Unlock()

	if err := a.loadIdentity(); err != nil {
		return err
	}
	a.client, err = upload.New(a.id.Collector, a.id, upload.Options{HTTPClient: a.cfg.HTTPClient, Now: a.cfg.Now, UserAgent: "anycatch-probe/" + a.cfg.Version})
	if err != nil {
		return err
	}
	a.writeStatus()
	if a.id.Probe == "" {
		if err := a.enroll(ctx); err != nil {
			a.setState("stopped")
			a.writeStatus()
			return err
		}
	}
	a.mu.Lock()
	a.st.Probe, a.st.State = a.id.Probe, "running"
	a.mu.Unlock()
	a.log.Info("probe running", "probe", a.id.Probe, "collector", a.id.Collector, "max_pps", a.cfg.MaxPPS, "max_concurrent", a.cfg.MaxConcurrent, "allow_private", a.cfg.AllowPrivate)

	etag := a.loadCachedSchedule()

	// runCtx outlives ctx by DrainTimeout so in-flight measurements can
	// finish and be spooled after a SIGTERM.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	stopDrain := context.AfterFunc(ctx, func() {
		t := time.NewTimer(a.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelRuns()
		case <-runCtx.Done():
		}
	})
	defer stopDrain()

	jobs := make(chan job, a.cfg.MaxConcurrent)
	var workers, loops sync.WaitGroup
	for range a.cfg.MaxConcurrent {
		workers.Go(func() { a.worker(ctx, runCtx, jobs) })
	}
	loops.Go(func() { a.scheduler(ctx, jobs) }) // closes jobs
	loops.Go(func() { a.fetcher(ctx, etag) })
	loops.Go(func() { a.uploader(ctx) })
	loops.Go(func() { a.heartbeats(ctx) })
	loops.Go(func() { a.statusWriter(ctx) })
	if !a.cfg.NoLive {
		loops.Go(func() { a.liveLoop(ctx) })
	} else {
		a.setLive("disabled", nil)
	}

	<-ctx.Done()
	a.log.Info("shutting down: waiting for in-flight measurements", "timeout", a.cfg.DrainTimeout)
	loops.Wait()
	workers.Wait()
	cancelRuns()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.FinalUpload)
	defer cancel()
	if until := a.backoffUntil(); a.cfg.Now().Before(until) {
		a.log.Info("skipping final upload: collector asked to back off", "until", until)
	} else {
		a.drain(fctx, 10)
	}
	a.setState("stopped")
	a.writeStatus()
	a.log.Info("probe stopped", "spool_pending", a.spool.Stats().Pending)
	return nil
}

func (a *Agent) loadIdentity() error {
	path := filepath.Join(a.cfg.StateDir, IdentityFile)
	id, err := upload.LoadIdentity(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if a.cfg.Collector == "" {
			return errors.New("not enrolled yet: a collector URL and an enrollment token are required")
		}
		if id, err = upload.NewIdentity(a.cfg.Collector, a.cfg.Now()); err != nil {
			return err
		}
		// Save the key before enrolling so the collector never knows a
		// key this probe has lost.
		if err := id.Save(path); err != nil {
			return err
		}
	case err != nil:
		return err
	case a.cfg.Collector != "" && a.cfg.Collector != id.Collector && id.Probe != "":
		return fmt.Errorf("state dir %s is enrolled with collector %s, not %s; remove %s to enroll again", a.cfg.StateDir, id.Collector, a.cfg.Collector, path)
	case id.Probe == "" && a.cfg.Collector != "":
		id.Collector = a.cfg.Collector
	}
	a.id = id
	a.mu.Lock()
	a.st.Collector, a.st.Probe = id.Collector, id.Probe
	a.mu.Unlock()
	return nil
}

func (a *Agent) enroll(ctx context.Context) error {
	if a.cfg.EnrollToken == "" {
		return errors.New("not enrolled yet: an enrollment token is required")
	}
	req := measure.EnrollRequest{Token: a.cfg.EnrollToken, Version: a.cfg.Version, Capabilities: a.cfg.Capabilities, Location: a.cfg.Location}
	var bo backoff
	bo.max = a.cfg.MaxBackoff
	for {
		resp, err := a.client.Enroll(ctx, req)
		if err == nil {
			a.id.Probe = resp.Probe
			a.id.Enrolled = a.cfg.Now().UTC()
			if err := a.id.Save(filepath.Join(a.cfg.StateDir, IdentityFile)); err != nil {
				return fmt.Errorf("enrolled as %s but could not save the identity: %w", resp.Probe, err)
			}
			a.log.Info("enrolled", "probe", resp.Probe, "collector", a.id.Collector)
			return nil
		}
		a.recordError("enroll", err)
		if !upload.Retryable(err) {
			return fmt.Errorf("enrollment refused: %w", err)
		}
		d := bo.next(err)
		a.log.Warn("enrollment failed; retrying", "err", err, "in", d)
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// planned is one measurement under the scheduler.
type planned struct {
	m      measure.Measurement
	jitter time.Duration
	next   time.Time
	busy   atomic.Bool // queued or running; a run is skipped while set
}

// job is one run handed to a worker; m is a copy so the scheduler may
// update its plan while the run is in flight.
type job struct {
	m      measure.Measurement
	p      *planned
	urgent bool // nudged: upload the result at once
}

func (a *Agent) scheduler(ctx context.Context, jobs chan<- job) {
	defer close(jobs)
	plan := map[string]*planned{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := a.cfg.Now()
		var earliest time.Time
		for _, p := range plan {
			if !now.Before(p.next) {
				if p.busy.CompareAndSwap(false, true) {
					select {
					case jobs <- job{m: p.m, p: p}:
					default:
						p.busy.Store(false)
						a.countSkip(p, "all workers busy")
					}
				} else {
					a.countSkip(p, "previous run still busy")
				}
				p.next = nextRun(now, time.Duration(p.m.IntervalSec)*time.Second, time.Duration(p.m.OffsetSec)*time.Second+p.jitter)
			}
			if earliest.IsZero() || p.next.Before(earliest) {
				earliest = p.next
			}
		}
		wait := time.Hour
		if !earliest.IsZero() {
			wait = max(earliest.Sub(now), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case ms := <-a.schedules:
			plan = a.replan(plan, ms, now)
		case m := <-a.nudges:
			if m.Type == measure.LiveAdhoc {
				a.runAdhoc(m, jobs)
			} else {
				a.runNow(plan, m, jobs)
			}
		case <-timer.C:
		}
	}
}

// replan keeps the timing of unchanged measurements across schedule
// updates so a refresh neither skips nor doubles a run.
func (a *Agent) replan(old map[string]*planned, ms []measure.Measurement, now time.Time) map[string]*planned {
	plan := make(map[string]*planned, len(ms))
	for _, m := range ms {
		if p, ok := old[m.ID]; ok && sameTiming(p.m, m) {
			p.m = m
			plan[m.ID] = p
			continue
		}
		p := &planned{m: m, jitter: startJitter(a.id.Probe, m)}
		// A measurement new to this probe runs soon, spread over
		// FirstRunSpread, rather than at its next phase up to an interval
		// away: a target just created is measured by every probe at once.
		p.next = now.Add(firstRunDelay(a.id.Probe, m, min(a.cfg.FirstRunSpread, time.Duration(m.IntervalSec)*time.Second)))
		plan[m.ID] = p
	}
	return plan
}

func sameTiming(x, y measure.Measurement) bool {
	return x.IntervalSec == y.IntervalSec && x.OffsetSec == y.OffsetSec
}

func (a *Agent) countSkip(p *planned, why string) {
	a.mu.Lock()
	a.st.Skipped++
	n := a.st.Skipped
	a.mu.Unlock()
	if n <= 10 || n%1000 == 0 {
		a.log.Warn("measurement run skipped", "msm", p.m.ID, "why", why, "skipped_total", n)
	}
}

// worker runs jobs. ctx ends scheduling (a job still waiting for packet
// budget is dropped); runCtx bounds runs already started.
func (a *Agent) worker(ctx, runCtx context.Context, jobs <-chan job) {
	for j := range jobs {
		if ctx.Err() == nil && a.bucket.wait(ctx, j.m.Spec.Packets()) == nil {
			a.runOne(runCtx, j.m, j.urgent)
		}
		j.p.busy.Store(false)
	}
}

func (a *Agent) runOne(ctx context.Context, m measure.Measurement, urgent bool) {
	// Refuse again here: the policy must hold even if planning had a bug.
	if err := CheckTarget(m.Address, a.cfg.AllowPrivate); err != nil {
		a.recordError("run", err)
		return
	}
	start := a.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, m.Spec.Timeout()+2*time.Second)
	res := a.safeRun(ctx, m)
	cancel()
	a.complete(&res, m, start)
	a.mu.Lock()
	kc := a.st.Runs[m.Spec.Kind]
	if kc == nil {
		kc = &KindCounts{}
		a.st.Runs[m.Spec.Kind] = kc
	}
	kc.Runs++
	if res.Error != "" {
		kc.Errors++
	}
	a.mu.Unlock()
	if err := a.spool.Append(&res); err != nil {
		a.recordError("spool", err)
		return
	}
	if a.placeChanged(&res) {
		// The catchment may have moved: the collector confirms with
		// other probes as soon as it sees this, so do not sit on it.
		urgent = true
	}
	ch := a.spooled
	if urgent {
		ch = a.urgent
	}
	if a.spool.Stats().Pending >= a.currentBatchMax() {
		ch = a.kick
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// placeChanged reports whether an identity or dns result answers
// differently from the previous run of its measurement (another identity,
// or now no answer, or again one).
func (a *Agent) placeChanged(res *measure.Result) bool {
	// Ad-hoc ids are used once: remembering them would only grow the map.
	if res.Kind != measure.KindIdentity && res.Kind != measure.KindDNS || measure.IsAdhocID(res.Measurement) {
		return false
	}
	place := "unreachable"
	if res.DNS != nil && res.DNS.Identity != nil && !res.DNS.Identity.Empty() {
		id := res.DNS.Identity
		place = id.HostnameBind + "\x00" + id.IDServer + "\x00" + id.NSID
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lastPlace == nil {
		a.lastPlace = map[string]string{}
	}
	prev, known := a.lastPlace[res.Measurement]
	a.lastPlace[res.Measurement] = place
	return known && prev != place
}

func (a *Agent) safeRun(ctx context.Context, m measure.Measurement) (res measure.Result) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("measurement panicked", "msm", m.ID, "panic", r)
			res = measure.Result{Error: truncate(fmt.Sprintf("internal: engine panic: %v", r), 1024)}
		}
	}()
	return a.cfg.Runner(ctx, m)
}

// complete fills what the runner left out and makes sure only valid
// results are spooled: an invalid one becomes an error result.
func (a *Agent) complete(res *measure.Result, m measure.Measurement, start time.Time) {
	res.V = measure.Version
	if res.ID.IsZero() || res.ID.Version() != 7 {
		res.ID = measure.NewUUIDv7(start)
	}
	res.Measurement, res.Target, res.Kind = m.ID, m.Target, m.Spec.Kind
	res.Probe = ""
	if res.Time.IsZero() {
		res.Time = start.UTC()
	}
	if res.Dst == "" {
		res.Dst = m.Address
	}
	if addr, err := netip.ParseAddr(res.Dst); err == nil {
		res.AF = 6
		if addr.Unmap().Is4() {
			res.AF = 4
		}
	}
	if res.DurationMS == 0 {
		res.DurationMS = float64(a.cfg.Now().Sub(start).Microseconds()) / 1000
	}
	if err := res.Validate(a.cfg.Now()); err != nil {
		a.recordError("run", fmt.Errorf("engine produced an invalid result for %s: %w", m.ID, err))
		*res = measure.Result{V: res.V, ID: res.ID, Measurement: res.Measurement, Target: res.Target, Kind: res.Kind,
			Time: res.Time, Dst: m.Address, AF: res.AF, DurationMS: res.DurationMS,
			Error: truncate("internal: invalid result: "+err.Error(), 1024)}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (a *Agent) fetcher(ctx context.Context, etag string) {
	var bo backoff
	bo.max = a.cfg.MaxBackoff
	for {
		wait := a.fetchOnce(ctx, &etag, &bo)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-a.fetchNow:
			t.Stop()
		}
	}
}

func (a *Agent) fetchOnce(ctx context.Context, etag *string, bo *backoff) time.Duration {
	s, tag, err := a.client.FetchSchedule(ctx, *etag)
	now := a.cfg.Now().UTC()
	a.mu.Lock()
	refresh := a.refresh
	a.mu.Unlock()
	if refresh <= 0 {
		refresh = a.cfg.MinRefresh
	}
	switch {
	case errors.Is(err, upload.ErrNotModified):
		bo.reset()
		a.mu.Lock()
		a.st.Schedule.CheckedAt = now
		a.mu.Unlock()
		return refresh
	case err != nil:
		if ctx.Err() != nil {
			return 0
		}
		a.recordError("schedule", err)
		return min(bo.next(err), max(refresh, a.cfg.MinRefresh))
	}
	bo.reset()
	*etag = tag
	a.applySchedule(s, now)
	a.saveSchedule(s, tag)
	return a.refreshOf(s)
}

func (a *Agent) refreshOf(s *measure.Schedule) time.Duration {
	return min(max(time.Duration(s.RefreshSec)*time.Second, a.cfg.MinRefresh), 24*time.Hour)
}

func (a *Agent) applySchedule(s *measure.Schedule, now time.Time) {
	ok, refused := planSchedule(s, a.cfg.AllowPrivate, a.cfg.MinInterval)
	for _, r := range refused {
		a.log.Warn("measurement refused", "msm", r.ID, "address", r.Address, "reason", r.Reason)
	}
	pps := a.cfg.MaxPPS
	if s.MaxPPS > 0 && s.MaxPPS < pps {
		pps = s.MaxPPS
	}
	a.bucket.setRate(pps)
	a.mu.Lock()
	a.refresh = a.refreshOf(s)
	a.st.MaxPPS = pps
	a.st.Schedule = ScheduleStatus{Version: s.Version, FetchedAt: now, CheckedAt: now, Measurements: len(ok), Refused: refused}
	if s.UploadEvery > 0 {
		a.uploadEvery = min(max(time.Duration(s.UploadEvery)*time.Second, 10*time.Second), time.Hour)
	} else {
		a.uploadEvery = a.cfg.UploadEvery
	}
	a.mu.Unlock()
	a.log.Info("schedule loaded", "version", s.Version, "measurements", len(ok), "refused", len(refused), "max_pps", pps)
	select { // replace any schedule the scheduler has not picked up yet
	case <-a.schedules:
	default:
	}
	a.schedules <- ok
}

type cachedSchedule struct {
	ETag     string           `json:"etag"`
	Schedule measure.Schedule `json:"schedule"`
}

func (a *Agent) saveSchedule(s *measure.Schedule, etag string) {
	b, err := json.Marshal(cachedSchedule{ETag: etag, Schedule: *s})
	if err == nil {
		err = upload.WriteFileAtomic(filepath.Join(a.cfg.StateDir, ScheduleFile), b, 0o600)
	}
	if err != nil {
		a.recordError("schedule", fmt.Errorf("cache schedule: %w", err))
	}
}

// loadCachedSchedule starts measuring with the last schedule seen, so a
// restart during a collector outage loses no measurements. A schedule
// cached for another probe id is ignored.
func (a *Agent) loadCachedSchedule() string {
	b, err := os.ReadFile(filepath.Join(a.cfg.StateDir, ScheduleFile))
	if err != nil {
		return ""
	}
	var c cachedSchedule
	if err := json.Unmarshal(b, &c); err != nil || c.Schedule.Probe != "" && c.Schedule.Probe != a.id.Probe {
		return ""
	}
	a.applySchedule(&c.Schedule, time.Time{})
	return c.ETag
}

// uploader sends results soon after they are spooled, so catchment changes
// reach the collector within seconds: UploadDelay after a new result
// (gathering results that finish together), never more often than once per
// UploadMinGap, and at least every uploadEvery while anything is pending
// (retries after failures). A full batch goes at once.
func (a *Agent) uploader(ctx context.Context) {
	var last time.Time
	for {
		a.mu.Lock()
		every := a.uploadEvery
		a.mu.Unlock()
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-a.kick:
			t.Stop()
		case <-a.urgent:
			// A nudged result is awaited by someone: skip the minimum
			// gap, batch only what finishes within a moment.
			t.Stop()
			if !sleep(ctx, min(a.cfg.UploadDelay, 200*time.Millisecond)) {
				return
			}
		case <-a.spooled:
			t.Stop()
			wait := max(a.cfg.UploadDelay, a.cfg.UploadMinGap-a.cfg.Now().Sub(last))
			// A nudged result arriving meanwhile cuts the wait short.
			w := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case <-w.C:
			case <-a.kick:
				w.Stop()
			case <-a.urgent:
				w.Stop()
				if !sleep(ctx, min(a.cfg.UploadDelay, 200*time.Millisecond)) {
					return
				}
			}
		}
		last = a.cfg.Now()
		if until := a.backoffUntil(); a.cfg.Now().Before(until) {
			if !sleep(ctx, until.Sub(a.cfg.Now())) {
				return
			}
		}
		a.drain(ctx, 20)
	}
}

// drain uploads up to maxBatches batches, stopping at the first failure,
// an incomplete batch, or a batch that made no progress.
func (a *Agent) drain(ctx context.Context, maxBatches int) {
	for range maxBatches {
		if ctx.Err() != nil {
			return
		}
		n := a.currentBatchMax()
		es, err := a.spool.Peek(n, a.cfg.BatchBytes)
		if err != nil {
			a.recordError("spool", err)
			return
		}
		if len(es) == 0 {
			return
		}
		// A batch already on its way is allowed to finish for a short
		// grace period after shutdown begins: cutting it off after the
		// collector committed it would only make the final upload send
		// it again.
		rctx, cancel := graceContext(ctx, a.cfg.FinalUpload)
		progress, err := a.uploadBatch(rctx, es)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				d := a.noteFailure(err)
				a.recordError("upload", err)
				a.log.Warn("upload failed; backing off", "err", err, "retry_in", d, "pending", a.spool.Stats().Pending)
			}
			return
		}
		if !progress || len(es) < n {
			return
		}
	}
}

// graceContext returns a context that outlives ctx by grace: it is
// cancelled grace after ctx is done (or by the returned cancel).
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var timer *time.Timer
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return rctx, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// uploadBatch sends es and applies the verdicts. progress is false when
// nothing could be removed from the spool.
func (a *Agent) uploadBatch(ctx context.Context, es []spool.Entry) (progress bool, err error) {
	lines := make([][]byte, len(es))
	for i, e := range es {
		lines[i] = e.Data
	}
	resp, err := a.client.Upload(ctx, lines)
	var se *upload.StatusError
	if errors.As(err, &se) && (se.StatusCode == http.StatusBadRequest || se.StatusCode == http.StatusRequestEntityTooLarge) {
		// The batch as a whole is unacceptable: find the culprit by
		// halving; a single line the collector refuses is dropped.
		if len(es) == 1 {
			a.log.Error("collector refuses a result; dropping it", "id", es[0].ID, "err", err)
			a.mu.Lock()
			a.st.Upload.Rejected++
			a.mu.Unlock()
			return true, a.spool.Ack(es)
		}
		a.mu.Lock()
		a.batchMax = max(1, len(es)/2)
		a.mu.Unlock()
		return true, nil
	}
	if err != nil {
		return false, err
	}
	var ack []spool.Entry
	var acc, dup, rej int64
	for _, v := range resp.Lines {
		i := v.Line - 1
		if i < 0 || i >= len(es) || v.ID != "" && v.ID != es[i].ID.String() {
			continue // a verdict we cannot pin to a line: keep the line, retry it
		}
		switch v.Verdict {
		case measure.Accepted:
			acc++
		case measure.Duplicate:
			dup++
		case measure.Rejected:
			rej++
			if rej <= 5 {
				a.log.Warn("collector rejected a result", "id", es[i].ID, "reason", v.Reason)
			}
		default:
			continue
		}
		ack = append(ack, es[i])
	}
	if err := a.spool.Ack(ack); err != nil {
		a.recordError("spool", err)
	}
	a.mu.Lock()
	a.st.Upload.Accepted += acc
	a.st.Upload.Duplicate += dup
	a.st.Upload.Rejected += rej
	a.st.Upload.LastOK = a.cfg.Now().UTC()
	a.st.Upload.BackoffUntil = time.Time{}
	a.backoff.reset()
	a.batchMax = min(a.cfg.BatchMax, a.batchMax*2)
	a.mu.Unlock()
	if rej > 0 {
		a.recordError("upload", fmt.Errorf("collector rejected %d results", rej))
	}
	return len(ack) > 0, nil
}

func (a *Agent) currentBatchMax() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.batchMax
}

func (a *Agent) noteFailure(err error) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.backoff.next(err)
	a.st.Upload.BackoffUntil = a.cfg.Now().Add(d).UTC()
	return d
}

func (a *Agent) backoffUntil() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Upload.BackoffUntil
}

func (a *Agent) heartbeats(ctx context.Context) {
	for {
		st := a.spool.Stats()
		hb := measure.Heartbeat{Version: a.cfg.Version, Capabilities: a.cfg.Capabilities, Location: a.cfg.Location, SpoolDepth: st.Pending, Dropped: st.Dropped}
		if err := a.client.Heartbeat(ctx, hb); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.recordError("heartbeat", err)
		} else {
			a.mu.Lock()
			a.st.Heartbeat = a.cfg.Now().UTC()
			a.mu.Unlock()
		}
		if !sleep(ctx, a.cfg.HeartbeatEvery) {
			return
		}
	}
}

func (a *Agent) statusWriter(ctx context.Context) {
	for {
		a.writeStatus()
		if !sleep(ctx, a.cfg.StatusEvery) {
			return
		}
	}
}

// Status returns a snapshot of the agent's status.
func (a *Agent) Status() Status {
	sp := spool.Stats{}
	if a.spool != nil {
		sp = a.spool.Stats()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.st
	s.Updated = a.cfg.Now().UTC()
	s.Spool = sp
	s.Runs = make(map[measure.Kind]*KindCounts, len(a.st.Runs))
	for k, v := range a.st.Runs {
		c := *v
		s.Runs[k] = &c
	}
	s.Errors = append([]ErrorEntry(nil), a.st.Errors...)
	s.Schedule.Refused = append([]Refusal(nil), a.st.Schedule.Refused...)
	sort.Slice(s.Schedule.Refused, func(i, j int) bool { return s.Schedule.Refused[i].ID < s.Schedule.Refused[j].ID })
	return s
}

func (a *Agent) writeStatus() {
	s := a.Status()
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = upload.WriteFileAtomic(filepath.Join(a.cfg.StateDir, StatusFile), append(b, '\n'), 0o600)
	}
	if err != nil {
		a.log.Error("write status", "err", err)
	}
}

func (a *Agent) setState(s string) {
	a.mu.Lock()
	a.st.State = s
	a.mu.Unlock()
}

func (a *Agent) recordError(op string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.Errors = append(a.st.Errors, ErrorEntry{Time: a.cfg.Now().UTC(), Op: op, Message: truncate(err.Error(), 512)})
	if len(a.st.Errors) > 10 {
		a.st.Errors = append(a.st.Errors[:0], a.st.Errors[len(a.st.Errors)-10:]...)
	}
}

// backoff computes retry delays: the collector's Retry-After when given
// (capped at an hour), else exponential from 1 s to max with full jitter.
type backoff struct {
	max      time.Duration
	failures int
}

func (b *backoff) next(err error) time.Duration {
	b.failures++
	if d, ok := upload.RetryAfter(err); ok {
		return min(d, time.Hour)
	}
	d := time.Second << min(b.failures-1, 20)
	d = min(d, b.max)
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.failures = 0 }

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
