package collector

import (
	"context"
	"errors"
	"sync/atomic"
)

// Disabling a probe or site agent takes effect at once: the store's
// listener (store.DB.ListenChanges on the probes channel, migration 008)
// calls [Collector.ProbeChanged] whichever process made the change, and
// the collector drops the cached key and closes the live channel of a
// probe that is no longer active, which also takes it out of on-demand
// selection (only connected probes are selected, and a disabled probe's
// reconnect fails its challenge). Without notifications a live channel
// still re-checks its key at every ping (livePingEvery), so a disabled
// probe keeps its channel at most KeyCacheTTL plus livePingEvery.

// probeChecks queues the probes to re-check; when the queue is full every
// connected probe is re-checked instead (checkAll).
type probeChecks struct {
	ch       chan string
	checkAll atomic.Bool
}

const probeCheckQueue = 1024

// ProbeChanged tells the collector that probe id's status or key may have
// changed (id "": any probe's). It never blocks; the check runs on the
// collector's own loop (started by [Collector.Run]).
func (c *Collector) ProbeChanged(id string) {
	if id == "" {
		c.checks.checkAll.Store(true) // and wake the loop below
	}
	select {
	case c.checks.ch <- id:
	default:
		c.checks.checkAll.Store(true)
	}
}

// probeCheckLoop runs ProbeChanged's checks until ctx ends.
func (c *Collector) probeCheckLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-c.checks.ch:
			if c.checks.checkAll.Swap(false) {
				for _, p := range c.live.connected() {
					c.checkProbe(ctx, p)
				}
			}
			if id != "" {
				c.checkProbe(ctx, id)
			}
		}
	}
}

// checkProbe re-reads a probe's key and closes its live channel unless it
// is still an active probe. A store error keeps the channel (the next
// ping re-checks).
func (c *Collector) checkProbe(ctx context.Context, id string) {
	c.keys.forget(id)
	if !c.live.has(id) {
		return
	}
	key, err := c.keys.get(ctx, c.store, id, c.cfg.Now())
	if err != nil && !errors.Is(err, ErrUnknownProbe) {
		c.log.Warn("re-check probe key", "probe", id, "err", err)
		return
	}
	if err != nil || key.Disabled || key.Role != RoleProbe {
		if c.live.dropProbe(id) {
			c.log.Info("live channel closed: probe disabled", "probe", id)
		}
	}
}

// stillActive reports whether a connected probe's key (cached up to
// KeyCacheTTL) still allows a live channel; store errors count as yes.
func (c *Collector) stillActive(ctx context.Context, id string) bool {
	key, err := c.keys.get(ctx, c.store, id, c.cfg.Now())
	switch {
	case errors.Is(err, ErrUnknownProbe):
		return false
	case err != nil:
		return true
	}
	return !key.Disabled && key.Role == RoleProbe
}
