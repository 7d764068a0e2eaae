package census

import (
	"context"
	"time"
)

// HardMaxPPS is the ceiling no configuration can raise: a census sender
// never transmits faster than this many echo requests per second.
const HardMaxPPS = 10000

// DefaultPPS is the send rate when neither the round nor the site says.
const DefaultPPS = 100

// EffectivePPS is the rate a sender uses: the round's rate, capped by the
// site's own ceiling and by [HardMaxPPS]; 0 values mean "no opinion".
func EffectivePPS(round, site int) int {
	r := DefaultPPS
	if round > 0 {
		r = round
	}
	if site > 0 && r > site {
		r = site
	}
	return min(r, HardMaxPPS)
}

// Pacer is a token bucket that starts empty: send k (from 0) is let
// through no earlier than k/rate seconds after the first, so the average
// rate over any run from the first send never exceeds rate. When the
// sender falls behind (a late wake-up on a loaded machine), it may catch
// up with up to burst sends back to back, but never gets ahead of that
// schedule.
type Pacer struct {
	interval time.Duration
	burst    int
	next     time.Time // when the bucket is full again minus burst intervals
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
}

// NewPacer returns a pacer for pps sends per second (capped at HardMaxPPS)
// with a burst of burst (at least 1). now and sleep may be nil (the real
// clock).
func NewPacer(pps, burst int, now func() time.Time, sleep func(context.Context, time.Duration) error) *Pacer {
	pps = max(1, min(pps, HardMaxPPS))
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	return &Pacer{interval: time.Second / time.Duration(pps), burst: max(burst, 1), now: now, sleep: sleep}
}

// Wait blocks until the next send is allowed or ctx ends.
func (p *Pacer) Wait(ctx context.Context) error {
	now := p.now()
	if p.next.IsZero() {
		p.next = now // empty bucket: the first send now, the next one interval later
	}
	// The bucket holds at most burst tokens: never let next fall further
	// behind now than that.
	if floor := now.Add(-time.Duration(p.burst-1) * p.interval); p.next.Before(floor) {
		p.next = floor
	}
	if d := p.next.Sub(now); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
	}
	p.next = p.next.Add(p.interval)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
