package collector

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// plan is an immutable snapshot of what probes measure: every enabled
// target's measurements, and per measurement id what a result for it must
// look like.
type plan struct {
	targets map[int]*plannedTarget
	msms    []measure.Measurement // sorted by ID, OffsetSec 0
	byID    map[string]*plannedMsm
	version string // hash of msms: changes when any probe's schedule changes
}

type plannedTarget struct {
	Target
	rulesHash  [32]byte
	identifier *catchment.Identifier // nil when the rules do not compile
}

type plannedMsm struct {
	target *plannedTarget
	kind   measure.Kind
	addr   netip.Addr
	af     int
}

// MeasurementID is the stable id of a target's spec on one address family:
// "<target>/<kind>/<af>", with "-2", "-3"… after the kind for further specs
// of the same kind.
func MeasurementID(target string, kind measure.Kind, n, af int) string {
	k := string(kind)
	if n > 1 {
		k = fmt.Sprintf("%s-%d", k, n)
	}
	return fmt.Sprintf("%s/%s/%d", target, k, af)
}

// buildPlan expands targets into measurements. Identifiers are reused from
// prev when a target's identity order and rules are unchanged. A target
// whose rules do not compile is still measured; its identity answers are
// stored unidentified, and the error is returned for logging.
func buildPlan(ts []Target, prev *plan) (*plan, []error) {
	p := &plan{targets: make(map[int]*plannedTarget, len(ts)), byID: make(map[string]*plannedMsm)}
	var errs []error
	for _, t := range ts {
		// Targets are validated when written (API, admin CLI); one that is
		// not valid now (changed in SQL by hand) is still measured as far
		// as it can be, and the error is logged.
		if err := t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("target %s: %w", t.Name, err))
		}
		pt := &plannedTarget{Target: t, rulesHash: hashRules(t.IdentityOrder, t.Rules)}
		if prev != nil {
			if old := prev.targets[t.ID]; old != nil && old.rulesHash == pt.rulesHash {
				pt.identifier = old.identifier
			}
		}
		if pt.identifier == nil {
			idf, err := catchment.NewIdentifier(t.IdentityOrder, t.Rules)
			if err != nil {
				errs = append(errs, fmt.Errorf("target %s: rules: %w", t.Name, err))
			} else {
				pt.identifier = idf
			}
		}
		p.targets[t.ID] = pt
		seen := map[measure.Kind]int{}
		for _, spec := range t.Specs {
			if err := spec.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("target %s: %w", t.Name, err))
				continue
			}
			seen[spec.Kind]++
			n := seen[spec.Kind]
			for _, a := range []struct {
				s  string
				af int
			}{{t.Addr4, 4}, {t.Addr6, 6}} {
				if a.s == "" {
					continue
				}
				addr, err := netip.ParseAddr(a.s)
				if err != nil {
					errs = append(errs, fmt.Errorf("target %s: address %q: %w", t.Name, a.s, err))
					continue
				}
				id := MeasurementID(t.Name, spec.Kind, n, a.af)
				p.msms = append(p.msms, measure.Measurement{
					ID: id, Target: t.Name, Address: addr.String(), IntervalSec: t.IntervalSec, Spec: spec,
				})
				p.byID[id] = &plannedMsm{target: pt, kind: spec.Kind, addr: addr.Unmap(), af: a.af}
			}
		}
	}
	sort.Slice(p.msms, func(i, j int) bool { return p.msms[i].ID < p.msms[j].ID })
	b, _ := json.Marshal(p.msms)
	h := sha256.Sum256(b)
	p.version = hex.EncodeToString(h[:12])
	return p, errs
}

func hashRules(order []string, rules []catchment.Rule) [32]byte {
	b, _ := json.Marshal(struct {
		O []string
		R []catchment.Rule
	}{order, rules})
	return sha256.Sum256(b)
}

// offset spreads a probe's start within an interval, deterministically for
// a (probe, measurement) pair.
func offset(probe, msm string, interval int) int {
	if interval <= 1 {
		return 0
	}
	h := sha256.Sum256([]byte(probe + "\x00" + msm))
	return int(binary.BigEndian.Uint64(h[:8]) % uint64(interval))
}

// scheduleFor builds probe's schedule and its ETag (a hash of the content).
func (p *plan) scheduleFor(probe string, refresh int) (measure.Schedule, string) {
	s := measure.Schedule{Probe: probe, RefreshSec: refresh, Measurements: make([]measure.Measurement, len(p.msms))}
	for i, m := range p.msms {
		m.OffsetSec = offset(probe, m.ID, m.IntervalSec)
		s.Measurements[i] = m
	}
	b, _ := json.Marshal(s)
	h := sha256.Sum256(b)
	s.Version = hex.EncodeToString(h[:12])
	return s, `"` + s.Version + `"`
}

func (c *Collector) handleSchedule(w http.ResponseWriter, r *http.Request) {
	if c.overloaded() {
		writeRetry(w, c.cfg.RetryAfter, measure.CodeOverloaded, "collector overloaded; retry later")
		return
	}
	p, err := c.currentPlan(r.Context())
	if err != nil {
		c.log.Error("schedule", "err", err)
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "targets unavailable; retry later")
		return
	}
	s, etag := p.scheduleFor(probeFrom(r.Context()), c.cfg.ScheduleRefresh)
	w.Header().Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func etagMatch(header, etag string) bool {
	for _, f := range strings.Split(header, ",") {
		f = strings.TrimPrefix(strings.TrimSpace(f), "W/")
		if f == etag || f == "*" {
			return true
		}
	}
	return false
}
