package agent

import (
	"context"
	"sync"
	"time"
)

// bucket is the probe's packet ceiling: a token bucket refilled at rate
// packets per second holding at most one second's worth. A run reserves
// all its packets up front (spec.Packets()) and waits until the bucket has
// paid for them, so over any window T no more than rate·T + rate packets
// are started, whatever the schedule asks.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(pps int, now func() time.Time) *bucket {
	return &bucket{rate: float64(pps), tokens: float64(pps), last: now(), now: now}
}

func (b *bucket) setRate(pps int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.rate = float64(pps)
	b.tokens = min(b.tokens, b.rate)
}

func (b *bucket) refill() {
	now := b.now()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.rate, b.tokens+d.Seconds()*b.rate)
	}
	b.last = now
}

// reserve takes n tokens, possibly going into debt, and returns how long
// the caller must wait before using them.
func (b *bucket) reserve(n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

func (b *bucket) cancel(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.rate, b.tokens+float64(n))
}

// wait reserves n packets and sleeps until they are paid for. On ctx end
// the reservation is returned.
func (b *bucket) wait(ctx context.Context, n int) error {
	d := b.reserve(n)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		b.cancel(n)
		return ctx.Err()
	}
}
