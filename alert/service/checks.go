package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/anycatch/anycatch/alert"
)

// CheckStore is what region_flap, speed_of_light and inflation rules need
// beyond [Store]. It is a separate interface so stores (and test fakes)
// without it keep working: those rules then have no data and never fire.
type CheckStore interface {
	// ProbeRegions returns the regions of the probes with a recent
	// track of the target (from the current catchment state).
	ProbeRegions(ctx context.Context, targetID int) (map[string]alert.ProbeRegion, error)
	// SpeedOfLight returns the (probe, af, site) pairs whose identified
	// results in [from, to) were faster than light allows.
	SpeedOfLight(ctx context.Context, targetID int, from, to time.Time) ([]alert.Finding, error)
	// Inflation returns the probes whose anycast RTT in [from, to) was
	// inflated, from the result rollups.
	Inflation(ctx context.Context, targetID int, from, to time.Time) ([]alert.Finding, error)
}

// DefaultCheckEvery is the slow cadence of the periodic checks (probe
// regions, speed of light, inflation): they read more than the per-tick
// catchment counts, and what they watch changes slowly.
const DefaultCheckEvery = 5 * time.Minute

// checkState is when each (target, kind) check last ran.
type checkState map[checkID]time.Time

type checkID struct {
	target int
	kind   alert.Kind
}

// runChecks runs the periodic checks target t's enabled rules need and
// whose last run is at least CheckEvery old, feeding the evaluator. A
// failed check is not retried before the next period either, so a slow
// or failing query cannot run on every tick.
func (s *Service) runChecks(ctx context.Context, now time.Time, t TargetInfo, rules []alert.Rule) error {
	window := map[alert.Kind]time.Duration{}
	for _, r := range rules {
		if r.TargetID != t.ID || !r.Enabled {
			continue
		}
		r.Defaults()
		switch r.Kind {
		case alert.KindRegionFlap, alert.KindSpeedOfLight, alert.KindInflation:
			window[r.Kind] = max(window[r.Kind], time.Duration(r.WindowSec)*time.Second)
		}
	}
	if len(window) == 0 {
		return nil
	}
	cs, ok := s.st.(CheckStore)
	if !ok {
		if !s.warnedChecks {
			s.warnedChecks = true
			s.log.Warn("alert store has no periodic checks: region_flap, speed_of_light and inflation rules never fire")
		}
		return nil
	}
	var errs []error
	for kind, w := range window {
		id := checkID{t.ID, kind}
		if last, ok := s.checks[id]; ok && now.Sub(last) < s.cfg.CheckEvery {
			continue
		}
		s.checks[id] = now
		var err error
		switch kind {
		case alert.KindRegionFlap:
			var m map[string]alert.ProbeRegion
			if m, err = cs.ProbeRegions(ctx, t.ID); err == nil {
				s.eval.SetRegions(t.ID, m)
			}
		case alert.KindSpeedOfLight, alert.KindInflation:
			check := cs.SpeedOfLight
			if kind == alert.KindInflation {
				check = cs.Inflation
			}
			var fs []alert.Finding
			if fs, err = check(ctx, t.ID, now.Add(-w), now); err == nil {
				s.eval.ObserveCheck(t.ID, kind, now, fs)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s check of %s: %w", kind, t.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("periodic checks: %w", err)
	}
	return nil
}
