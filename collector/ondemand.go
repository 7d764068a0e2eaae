package collector

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// On-demand measurements run a registered target's scheduled measurements
// once, now, on selected connected probes. They travel as nudges carrying
// the request id; results come back through each probe's spool and the
// normal idempotent upload (so they are stored, and counted in catchment,
// exactly like scheduled ones) and are matched to the request as they are
// committed: a result of a (probe, measurement) the request waits for,
// measured after the request started. A probe without a live channel is
// reported offline at once; one that answers neither result nor refusal
// by the deadline, timed out. Requests are tracked in this process only:
// probes connected to another collector instance count as offline.

// OnDemandRequest asks for an on-demand measurement.
type OnDemandRequest struct {
	Target  string         // registered, enabled target name
	Kinds   []measure.Kind // of the target's specs; empty: all of them
	AF      int            // 4 or 6; 0: every family the target has
	Probes  []string       // selected probes (the caller selects; unconnected ones are reported offline)
	Timeout time.Duration  // from now until pending probes time out; 0 means 30 s
}

// Errors of [Collector.StartOnDemand].
var (
	ErrUnknownTarget = errors.New("no such enabled target")
	ErrNothingToRun  = errors.New("the target has no measurement of the requested kinds and family")
)

// onDemandKeep bounds how many finished requests stay readable, and for
// how long.
const (
	onDemandKeep    = 1000
	onDemandKeepFor = time.Hour
)

// OnDemand is one running or finished request. Safe for concurrent use.
type OnDemand struct {
	mu      sync.Mutex
	st      measure.OnDemandStatus
	pending map[string]map[string]bool // probe -> msm -> waiting
	changed chan struct{}              // closed and replaced on every event
	timer   *time.Timer

	// Ad-hoc requests only (see adhoc.go): what each ad-hoc id measures,
	// and the probes the request reached, whose results ingest accepts.
	adhoc map[string]adhocMsm
	asked map[string]bool
	taken map[string]measure.UUID // probe "\x00" msm -> the one result accepted
}

// Status returns the request's status with events from index from on.
func (o *OnDemand) Status(from int) measure.OnDemandStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := o.st
	from = min(max(from, 0), len(o.st.Events))
	st.Events = slices.Clone(o.st.Events[from:])
	return st
}

// Wait returns a channel closed at the next event (or at the end).
func (o *OnDemand) Wait() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changed
}

// add appends an event; the caller holds o.mu.
func (o *OnDemand) add(ev measure.OnDemandEvent) {
	ev.Seq = len(o.st.Events) + 1
	o.st.Events = append(o.st.Events, ev)
	if len(o.pending) == 0 && o.st.Status != measure.OnDemandDone {
		o.st.Status = measure.OnDemandDone
		if o.timer != nil {
			o.timer.Stop()
		}
	}
	close(o.changed)
	o.changed = make(chan struct{})
}

// settle records the outcome of (probe, msm) if the request waits for it.
func (o *OnDemand) settle(probe, msm string, ev measure.OnDemandEvent) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	ms := o.pending[probe]
	if !ms[msm] {
		return false
	}
	delete(ms, msm)
	if len(ms) == 0 {
		delete(o.pending, probe)
	}
	o.add(ev)
	return true
}

// expire times out whatever is still pending.
func (o *OnDemand) expire(now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	probes := make([]string, 0, len(o.pending))
	for p := range o.pending {
		probes = append(probes, p)
	}
	slices.Sort(probes)
	for _, p := range probes {
		msms := make([]string, 0, len(o.pending[p]))
		for m := range o.pending[p] {
			msms = append(msms, m)
		}
		slices.Sort(msms)
		for _, m := range msms {
			delete(o.pending[p], m)
			if len(o.pending[p]) == 0 {
				delete(o.pending, p)
			}
			o.add(measure.OnDemandEvent{At: now.UTC(), Probe: p, Measurement: m, Outcome: measure.OutcomeTimeout,
				Reason: "no result before the deadline"})
		}
	}
}

type onDemands struct {
	mu   sync.Mutex
	byID map[string]*OnDemand
	live []*OnDemand // running, for matching results

	// nlive mirrors len(live) so the ingest path, which asks for every
	// stored row, skips the lock when nothing runs (the usual case).
	nlive atomic.Int32
}

// StartOnDemand nudges the selected connected probes to run the target's
// measurements of the requested kinds now, and returns the request at
// once. Unconnected probes get an offline event immediately.
func (c *Collector) StartOnDemand(req OnDemandRequest) (*OnDemand, error) {
	p := c.plan.Load()
	if p == nil {
		return nil, fmt.Errorf("on-demand: %w", ErrUnknownTarget)
	}
	var msms []string
	known := false
	for _, m := range p.msms {
		if m.Target != req.Target {
			continue
		}
		known = true
		pm := p.byID[m.ID]
		if (len(req.Kinds) == 0 || slices.Contains(req.Kinds, pm.kind)) && (req.AF == 0 || req.AF == pm.af) {
			msms = append(msms, m.ID)
		}
	}
	if !known {
		return nil, fmt.Errorf("on-demand: %w: %q", ErrUnknownTarget, req.Target)
	}
	if len(msms) == 0 {
		return nil, fmt.Errorf("on-demand: %w", ErrNothingToRun)
	}
	if req.Timeout <= 0 {
		req.Timeout = 30 * time.Second
	}
	var raw [8]byte
	rand.Read(raw[:])
	now := c.cfg.Now()
	probes := slices.Compact(slices.Sorted(slices.Values(req.Probes)))
	o := &OnDemand{
		st: measure.OnDemandStatus{ID: "od-" + hex.EncodeToString(raw[:]), Status: measure.OnDemandRunning, Target: req.Target,
			Measurements: msms, Probes: probes, Created: now.UTC(), Deadline: now.Add(req.Timeout).UTC()},
		pending: map[string]map[string]bool{},
		changed: make(chan struct{}),
	}
	for _, pr := range probes {
		o.pending[pr] = map[string]bool{}
		for _, m := range msms {
			o.pending[pr][m] = true
		}
	}
	// Register before nudging: a fast probe's result must find it.
	c.od.register(o, now)

	reached := c.live.sendTo(probes, measure.LiveMessage{Type: measure.LiveNudge, Measurements: msms, Request: o.st.ID, Reason: "on-demand " + o.st.ID})
	c.dispatched(o, probes, reached, now, req.Timeout)
	return o, nil
}

// dispatched records, after the live message went out, which of probes it
// did not reach (offline: they were not asked, and an ad-hoc request no
// longer accepts their results), ends a request that asked nobody, and
// arms the deadline of one still waiting.
func (c *Collector) dispatched(o *OnDemand, probes, reached []string, now time.Time, timeout time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, pr := range probes {
		if slices.Contains(reached, pr) {
			continue
		}
		delete(o.pending, pr)
		delete(o.asked, pr) // nil for target requests: a no-op
		o.add(measure.OnDemandEvent{At: now.UTC(), Probe: pr, Outcome: measure.OutcomeOffline, Reason: "probe holds no live channel to this collector"})
	}
	if len(probes) == 0 {
		o.st.Status = measure.OnDemandDone
	}
	if o.st.Status != measure.OnDemandDone {
		o.timer = time.AfterFunc(timeout, func() { o.expire(c.cfg.Now()) })
	}
}

// OnDemandByID returns a request started in this process within the last
// hour, or nil.
func (c *Collector) OnDemandByID(id string) *OnDemand {
	c.od.mu.Lock()
	defer c.od.mu.Unlock()
	return c.od.byID[id]
}

// prune drops finished requests from live, and old ones from byID; the
// caller holds mu.
func (ods *onDemands) prune(now time.Time) {
	keep := ods.live[:0]
	for _, o := range ods.live {
		o.mu.Lock()
		done := o.st.Status == measure.OnDemandDone
		o.mu.Unlock()
		if !done {
			keep = append(keep, o)
		}
	}
	clear(ods.live[len(keep):])
	ods.live = keep
	ods.nlive.Store(int32(len(keep)))
	if len(ods.byID) < onDemandKeep {
		return
	}
	for id, o := range ods.byID {
		o.mu.Lock()
		old := o.st.Status == measure.OnDemandDone && now.Sub(o.st.Deadline) > onDemandKeepFor
		o.mu.Unlock()
		if old || len(ods.byID) >= onDemandKeep*2 {
			delete(ods.byID, id)
		}
	}
}

// running returns the requests still waiting for something.
func (ods *onDemands) running() []*OnDemand {
	if ods.nlive.Load() == 0 {
		return nil
	}
	ods.mu.Lock()
	defer ods.mu.Unlock()
	ods.prune(time.Time{}) // finished requests stop being matched
	return slices.Clone(ods.live)
}

// observeOnDemand matches a committed result to the requests waiting for
// it.
func (c *Collector) observeOnDemand(probe string, row Row) {
	r := row.Result
	for _, o := range c.od.running() {
		o.mu.Lock()
		created := o.st.Created
		o.mu.Unlock()
		// A result measured before the request is a scheduled one that
		// happened to arrive now. A second of slack covers clock skew
		// between the probe and the collector.
		if r.Time.Before(created.Add(-time.Second)) {
			continue
		}
		o.settle(probe, r.Measurement, measure.OnDemandEvent{At: c.cfg.Now().UTC(), Probe: probe, Measurement: r.Measurement,
			Outcome: measure.OutcomeResult, Result: r})
	}
}

// refusedOnDemand records a probe's refusal to run measurements of a
// request.
func (c *Collector) refusedOnDemand(probe string, m measure.LiveMessage) {
	o := c.OnDemandByID(m.Request)
	if o == nil {
		return
	}
	reason := m.Reason
	if len(reason) > 512 {
		reason = reason[:512]
	}
	for _, msm := range m.Measurements {
		o.settle(probe, msm, measure.OnDemandEvent{At: c.cfg.Now().UTC(), Probe: probe, Measurement: msm,
			Outcome: measure.OutcomeRefused, Reason: reason})
	}
}
