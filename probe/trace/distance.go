package trace

import (
	"net/netip"
	"sync"
	"time"
)

// Distances remembers, per destination, the TTL at which the last trace
// reached it. A trace to a remembered destination probes only up to that
// TTL in its first wave, so it sends nothing past the destination, whose
// ICMP error rate limiter (Linux: burst 6, then one per second per
// source) then still has answers left for the next trace. It reaches
// further only when the remembered TTL turns out to be a router or
// silent. The zero value is ready to use; it is safe for concurrent use.
type Distances struct {
	mu sync.Mutex
	m  map[netip.Addr]distance
}

type distance struct {
	ttl int
	at  time.Time
}

const (
	// distanceTTL bounds how long a remembered distance is trusted: paths
	// change, and a stale short distance costs one extra round trip.
	distanceTTL = time.Hour
	// maxDistances bounds the table; an agent traces a few hundred targets.
	maxDistances = 4096
)

// defaultDistances is what Run uses when Options.Distances is nil, so an
// agent re-tracing the same targets benefits without wiring.
var defaultDistances Distances

func (d *Distances) get(dst netip.Addr, now time.Time) int {
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[dst]
	if !ok || now.Sub(e.at) > distanceTTL || e.at.After(now.Add(distanceTTL)) {
		return 0
	}
	return e.ttl
}

// put records ttl for dst; ttl <= 0 forgets dst (the trace did not reach
// it, so the next one starts cold).
func (d *Distances) put(dst netip.Addr, ttl int, now time.Time) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if ttl <= 0 {
		delete(d.m, dst)
		return
	}
	if d.m == nil {
		d.m = map[netip.Addr]distance{}
	}
	if _, ok := d.m[dst]; !ok && len(d.m) >= maxDistances {
		for k, e := range d.m { // bounded: evict expired entries, else any one
			if now.Sub(e.at) > distanceTTL {
				delete(d.m, k)
			}
		}
		for k := range d.m {
			if len(d.m) < maxDistances {
				break
			}
			delete(d.m, k)
		}
	}
	d.m[dst] = distance{ttl: ttl, at: now}
}
