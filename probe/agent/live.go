package agent

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/upload"
)

// livePingEvery is how often the probe checks its live channel; a dead
// collector or a proxy that silently dropped the connection is noticed
// within about this long.
const livePingEvery = 30 * time.Second

// liveLoop holds the live channel: dial, serve until it fails, then
// reconnect after a jittered exponential backoff. Polling never stops, so
// while the channel is down the probe behaves exactly as without it; a
// collector that does not offer the channel at all is retried rarely.
func (a *Agent) liveLoop(ctx context.Context) {
	bo := backoff{max: a.cfg.LiveMaxBackoff}
	a.setLive("connecting", nil)
	for {
		lc, err := a.client.DialLive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := bo.next(err)
			if upload.IsLiveUnsupported(err) {
				a.setLive("polling", err)
				// Jittered so a fleet that lost the channel at once does
				// not come back at once.
				d = a.cfg.LiveUnsupported/2 + rand.N(a.cfg.LiveUnsupported/2+1)
			} else {
				a.setLive("reconnecting", err)
			}
			a.log.Debug("live channel unavailable", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		start := a.cfg.Now()
		a.mu.Lock()
		a.st.Live.Connects++
		a.mu.Unlock()
		a.setLive("connected", nil)
		a.log.Info("live channel connected", "collector_version", lc.Version)
		// Whatever changed while the channel was down: one conditional
		// fetch (a 304 when nothing did).
		a.requestFetch()
		err = a.serveLive(ctx, lc)
		lc.CloseNow()
		if ctx.Err() != nil {
			return
		}
		if a.cfg.Now().Sub(start) > 2*livePingEvery {
			bo.reset() // it was healthy for a while: retry soon
		}
		d := bo.next(err)
		a.setLive("reconnecting", err)
		a.log.Info("live channel lost; reconnecting", "err", err, "in", d)
		if !sleep(ctx, d) {
			return
		}
	}
}

// serveLive handles messages until the channel fails or ctx ends.
func (a *Agent) serveLive(ctx context.Context, lc *upload.LiveConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pingErr := make(chan error, 1)
	go func() {
		t := time.NewTicker(livePingEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				pingErr <- nil
				return
			case <-t.C:
				if err := lc.Ping(ctx, 10*time.Second); err != nil {
					pingErr <- err
					cancel()
					return
				}
			}
		}
	}()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-a.liveOut:
				if err := lc.Send(ctx, m); err != nil {
					cancel()
					return
				}
			}
		}
	}()
	defer func() { cancel(); <-pingErr; <-writerDone }()
	for {
		m, err := lc.Next(ctx)
		if err != nil {
			return err
		}
		switch m.Type {
		case measure.LiveSchedule, measure.LiveWelcome:
			a.requestFetch()
		case measure.LiveNudge, measure.LiveAdhoc:
			a.mu.Lock()
			a.st.Live.Nudges++
			a.mu.Unlock()
			select {
			case a.nudges <- m:
			default:
				a.log.Warn("measure-now request dropped: scheduler busy", "measurements", len(m.Measurements))
			}
		}
		// Unknown types are ignored: the collector may be newer.
	}
}

func (a *Agent) requestFetch() {
	select {
	case a.fetchNow <- struct{}{}:
	default:
	}
}

// runNow queues the named scheduled measurements for one run now, out of
// turn, without moving their regular runs. Ids not in the plan (changed
// since, or refused by local policy) are skipped; a measurement already
// queued or running is not doubled. Packet-rate and concurrency limits
// still apply in the workers.
//
// For an on-demand request (m.Request set) every id it cannot run is
// reported back with the reason, so the requester sees a refusal instead
// of a silent timeout.
func (a *Agent) runNow(plan map[string]*planned, m measure.LiveMessage, jobs chan<- job) {
	for _, id := range m.Measurements {
		p := plan[id]
		if p == nil {
			if m.Request != "" {
				a.reportRefusal(m.Request, id, a.refusalReason(id))
			}
			continue
		}
		if !p.busy.CompareAndSwap(false, true) {
			continue
		}
		select {
		case jobs <- job{m: p.m, p: p, urgent: true}:
		default:
			p.busy.Store(false)
			a.countSkip(p, "all workers busy")
		}
	}
}

// refusalReason says why id is not in the plan.
func (a *Agent) refusalReason(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.st.Schedule.Refused {
		if r.ID == id {
			return r.Reason
		}
	}
	return "not in this probe's schedule"
}

func (a *Agent) reportRefusal(request, id, reason string) {
	a.log.Info("on-demand measurement refused", "request", request, "msm", id, "reason", reason)
	select {
	case a.liveOut <- measure.LiveMessage{Type: measure.LiveRefused, Request: request, Measurements: []string{id}, Reason: reason}:
	default: // the channel is gone or backed up: the request times out instead
	}
}

func (a *Agent) setLive(state string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.Live.State != state {
		a.st.Live.State = state
		a.st.Live.Since = a.cfg.Now().UTC()
	}
	if err != nil {
		a.st.Live.LastError = truncate(err.Error(), 512)
	}
}
