package collector

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/measure"
)

// Confirmation bursts. When a stored identity (or dns) result shows that a
// probe's place for a measurement changed (another site, unreachable,
// unidentified), the collector nudges the connected probes most likely to
// be affected too — those last seen at the same previous place, and those
// in the same ASN or country — to run that measurement now. The whole
// affected population is confirmed within seconds instead of within one
// interval. Bursts are rate-limited per measurement (BurstCooldown), and
// results older than burstMaxAge (a spool backlog) never start one.

// burstMaxAge: a result measured longer ago than this describes the past.
const burstMaxAge = 2 * time.Minute

// BurstEvent describes one confirmation burst.
type BurstEvent struct {
	At          time.Time `json:"at"`
	TargetID    int       `json:"target_id"`
	Measurement string    `json:"msm"`
	Trigger     string    `json:"trigger_probe"` // the probe whose result showed the change
	From        string    `json:"from"`          // place before: "site:CODE", "unreachable" or "unidentified"
	To          string    `json:"to"`
	Nudged      []string  `json:"nudged"` // probes asked to measure now
}

// BurstRecorder is implemented by stores that keep a record of bursts; the
// collector records through it when its Store implements it.
type BurstRecorder interface {
	RecordBurst(ctx context.Context, e BurstEvent) error
}

type burster struct {
	mu       sync.Mutex
	place    map[string]map[string]string // msm -> probe -> last place
	until    map[string]time.Time         // msm -> end of its cooldown
	probeGeo map[string]geo.Info          // probe -> from its latest heartbeat
	recent   []BurstEvent                 // newest last, bounded
}

// place is the catchment outcome compared between results: the state and,
// for identified ones, the site.
func placeOf(row Row) string {
	if row.State == catchment.StateSite {
		return "site:" + row.Site
	}
	return string(row.State)
}

func (c *Collector) noteGeo(probe string, g geo.Info) {
	c.burst.mu.Lock()
	defer c.burst.mu.Unlock()
	if c.burst.probeGeo == nil {
		c.burst.probeGeo = map[string]geo.Info{}
	}
	if len(c.burst.probeGeo) >= maxCachedKeys {
		clear(c.burst.probeGeo)
	}
	c.burst.probeGeo[probe] = g
}

// observePlace follows a stored row's catchment place and starts a burst
// when it moved.
func (c *Collector) observePlace(probe string, row Row) {
	r := row.Result
	if c.cfg.BurstCooldown < 0 || r == nil || r.Kind != measure.KindIdentity && r.Kind != measure.KindDNS {
		return
	}
	now := c.cfg.Now()
	if now.Sub(r.Time) > burstMaxAge {
		return
	}
	b := &c.burst
	msm := r.Measurement
	next := placeOf(row)
	b.mu.Lock()
	if b.place == nil {
		b.place, b.until = map[string]map[string]string{}, map[string]time.Time{}
	}
	byProbe := b.place[msm]
	if byProbe == nil {
		byProbe = map[string]string{}
		b.place[msm] = byProbe
	}
	prev, known := byProbe[probe]
	byProbe[probe] = next
	if !known || prev == next || now.Before(b.until[msm]) {
		b.mu.Unlock()
		return
	}
	b.until[msm] = now.Add(c.cfg.BurstCooldown)
	g, hasGeo := b.probeGeo[probe]
	var peers []string
	for p, pl := range byProbe {
		if p == probe {
			continue
		}
		pg, ok := b.probeGeo[p]
		sameNet := hasGeo && ok && (g.ASN != 0 && pg.ASN == g.ASN || g.Country != "" && pg.Country == g.Country)
		if pl == prev || sameNet {
			peers = append(peers, p)
		}
	}
	b.mu.Unlock()
	sort.Strings(peers)
	reached := c.Nudge(peers, []string{msm}, "confirm catchment change of "+msm)
	ev := BurstEvent{At: now.UTC(), TargetID: row.TargetID, Measurement: msm, Trigger: probe, From: prev, To: next, Nudged: reached}
	c.metrics.livePushes.WithLabelValues("burst").Inc()
	c.log.Info("confirmation burst", "msm", msm, "trigger", probe, "from", prev, "to", next, "candidates", len(peers), "nudged", len(reached))
	b.mu.Lock()
	b.recent = append(b.recent, ev)
	if len(b.recent) > 100 {
		b.recent = append(b.recent[:0], b.recent[len(b.recent)-100:]...)
	}
	b.mu.Unlock()
	if rec, ok := c.store.(BurstRecorder); ok {
		// Bursts are rare (one per measurement per cooldown): recording
		// inline costs one upload a short wait, and no goroutine outlives
		// the request.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := rec.RecordBurst(ctx, ev); err != nil {
			c.log.Warn("record confirmation burst", "err", err)
		}
	}
}

// Bursts returns the most recent confirmation bursts, oldest first.
func (c *Collector) Bursts() []BurstEvent {
	c.burst.mu.Lock()
	defer c.burst.mu.Unlock()
	return append([]BurstEvent(nil), c.burst.recent...)
}
