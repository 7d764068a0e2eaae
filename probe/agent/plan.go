package agent

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// MaxMeasurements bounds how many measurements one schedule may hold.
const MaxMeasurements = 10_000

// CheckTarget returns an error saying why address may not be measured: it
// does not parse, or it is in a special-purpose range and allowPrivate is
// false. IPv4-mapped IPv6 addresses are judged as IPv4.
func CheckTarget(address string, allowPrivate bool) error {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return fmt.Errorf("target %q is not an IP address", address)
	}
	if a.Zone() != "" {
		return fmt.Errorf("target %s has a zone", address)
	}
	if allowPrivate {
		return nil
	}
	// The ranges live in measure so the API judges resolved hostnames
	// by the same list.
	if reason, p, ok := measure.SpecialRange(a); ok {
		return fmt.Errorf("target %s is %s (%s); refused without --allow-private", address, reason, p)
	}
	return nil
}

// Refusal is a scheduled measurement the probe will not run, and why.
type Refusal struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// planSchedule checks every measurement of s against the probe's local
// policy and returns those it will run and those it refuses.
func planSchedule(s *measure.Schedule, allowPrivate bool, minInterval time.Duration) (ok []measure.Measurement, refused []Refusal) {
	seen := map[string]bool{}
	for i, m := range s.Measurements {
		var err error
		switch {
		case i >= MaxMeasurements:
			err = fmt.Errorf("schedule holds more than %d measurements", MaxMeasurements)
		case m.ID == "" || len(m.ID) > 200:
			err = errors.New("missing or overlong id")
		case seen[m.ID]:
			err = errors.New("duplicate id")
		case time.Duration(m.IntervalSec)*time.Second < minInterval:
			err = fmt.Errorf("interval %ds is below the probe's minimum %s", m.IntervalSec, minInterval)
		case m.IntervalSec > 7*24*3600:
			err = fmt.Errorf("interval %ds is longer than a week", m.IntervalSec)
		case m.OffsetSec < 0:
			err = fmt.Errorf("negative offset %d", m.OffsetSec)
		default:
			if err = m.Spec.Validate(); err == nil {
				err = CheckTarget(m.Address, allowPrivate)
			}
		}
		seen[m.ID] = true
		if err != nil {
			refused = append(refused, Refusal{ID: m.ID, Address: m.Address, Reason: err.Error()})
			continue
		}
		ok = append(ok, m)
	}
	return ok, refused
}

// startJitter spreads measurements of the same (interval, offset) across
// probes: a deterministic delay from a hash of (probe, measurement), below
// a tenth of the interval and at most 30 s.
func startJitter(probe string, m measure.Measurement) time.Duration {
	span := min(time.Duration(m.IntervalSec)*time.Second/10, 30*time.Second)
	if span <= time.Millisecond {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(probe))
	h.Write([]byte{0})
	h.Write([]byte(m.ID))
	return time.Duration(h.Sum64()%uint64(span/time.Millisecond)) * time.Millisecond
}

// nextRun returns the first start time strictly after t for a measurement
// that runs every interval at phase offset (both > 0 / ≥ 0), phases being
// counted from the Unix epoch so every probe agrees on them.
func nextRun(t time.Time, interval, offset time.Duration) time.Time {
	iv := int64(interval)
	phase := int64(offset) % iv
	x := t.UnixNano() - phase
	k := x / iv
	if x < 0 && x%iv != 0 {
		k-- // floor division
	}
	return time.Unix(0, (k+1)*iv+phase)
}

// firstRunDelay is when a measurement new to the schedule first runs: a
// deterministic point within spread, from a hash of (probe, measurement),
// so probes handed a new target together do not all send at one instant.
func firstRunDelay(probe string, m measure.Measurement, spread time.Duration) time.Duration {
	if spread <= time.Millisecond {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte("first\x00" + probe + "\x00" + m.ID))
	return time.Duration(h.Sum64()%uint64(spread/time.Millisecond)) * time.Millisecond
}
