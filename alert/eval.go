package alert

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Snapshot is a target's catchment for one address family at one time, as
// counted from the collector's catchment state: probes per site, and the
// probes that are unidentified or unreachable.
type Snapshot struct {
	TargetID     int
	AF           int
	Time         time.Time
	Sites        map[string]int // probes per identified site
	Unidentified int
	Unreachable  int
}

// Total is the number of probes observed.
func (s Snapshot) Total() int {
	n := s.Unidentified + s.Unreachable
	for _, c := range s.Sites {
		n += c
	}
	return n
}

// share is a count as percent of the snapshot's probes.
func (s Snapshot) share(n int) float64 {
	t := s.Total()
	if t == 0 {
		return 0
	}
	return 100 * float64(n) / float64(t)
}

// Move is one catchment change of a probe between places (a site code, or
// "?identity" for an unmapped answer); first observations are not moves.
type Move struct {
	TargetID int
	AF       int
	Probe    string
	Time     time.Time
	From, To string
}

type track struct {
	target, af int
}

type instKey struct {
	rule    int64
	af      int
	subject string
}

// instance is one (rule, af, subject)'s hysteresis state.
type instance struct {
	pendingSince time.Time // condition active, not yet fired
	clearSince   time.Time // firing, condition clear since
	firing       bool
	alertID      int64
	started      time.Time
}

// Event is a state transition an evaluation produced: an alert fired or
// resolved. Alert.ID is the stored alert's id for resolves (the caller
// sets it on fires via [Evaluator.Bind]).
type Event struct {
	Alert Alert
}

// Evaluator holds the recent history and the state of every alert
// instance. It is not safe for concurrent use; the service owns one.
type Evaluator struct {
	history map[track][]Snapshot
	moves   map[track][]Move
	seen    map[moveKey]bool
	inst    map[instKey]*instance
	// regions is each target's probes' regions, for region_flap rules.
	regions map[int]map[string]ProbeRegion
	// checks is the newest result of each periodic check (speed_of_light,
	// inflation) per target and family.
	checks map[checkKey]checkResult
}

type checkKey struct {
	target, af int
	kind       Kind
}

type checkResult struct {
	at    time.Time
	items []Finding
}

type moveKey struct {
	target, af int
	probe      string
	t          int64
}

// NewEvaluator returns an evaluator with no history.
func NewEvaluator() *Evaluator {
	return &Evaluator{history: map[track][]Snapshot{}, moves: map[track][]Move{}, seen: map[moveKey]bool{}, inst: map[instKey]*instance{},
		regions: map[int]map[string]ProbeRegion{}, checks: map[checkKey]checkResult{}}
}

// Observe adds a snapshot. Snapshots of a track must come in time order;
// an older one than the newest kept is ignored.
func (e *Evaluator) Observe(s Snapshot) {
	k := track{s.TargetID, s.AF}
	h := e.history[k]
	if n := len(h); n > 0 && !s.Time.After(h[n-1].Time) {
		return
	}
	e.history[k] = append(h, s)
}

// SetRegions replaces the regions of a target's probes (region_flap
// rules); moves of probes missing from m belong to no region.
func (e *Evaluator) SetRegions(targetID int, m map[string]ProbeRegion) {
	e.regions[targetID] = m
}

// ObserveCheck records the result of a periodic check (kind
// KindSpeedOfLight or KindInflation) of a target at time at: its findings
// over both families. Each family's count replaces the one before, so an
// empty result (nothing found) clears the condition.
func (e *Evaluator) ObserveCheck(targetID int, kind Kind, at time.Time, items []Finding) {
	for _, af := range []int{4, 6} {
		var mine []Finding
		for _, f := range items {
			if f.AF == af {
				mine = append(mine, f)
			}
		}
		slices.SortStableFunc(mine, func(a, b Finding) int { return cmp.Or(cmp.Compare(b.Weight, a.Weight), cmp.Compare(a.Key, b.Key)) })
		e.checks[checkKey{targetID, af, kind}] = checkResult{at: at, items: mine}
	}
}

// AddMoves adds change events, ignoring ones already added (the caller may
// read overlapping ranges so late uploads are not missed). It returns the
// moves that were new, for change counters.
func (e *Evaluator) AddMoves(ms []Move) []Move {
	var fresh []Move
	for _, m := range ms {
		mk := moveKey{m.TargetID, m.AF, m.Probe, m.Time.UnixNano()}
		if e.seen[mk] {
			continue
		}
		e.seen[mk] = true
		k := track{m.TargetID, m.AF}
		e.moves[k] = append(e.moves[k], m)
		fresh = append(fresh, m)
	}
	return fresh
}

// Restore marks an alert stored as firing (from before a restart) as
// firing, so the evaluator resolves it instead of firing it again.
func (e *Evaluator) Restore(a Alert) {
	e.inst[instKey{a.RuleID, a.AF, a.Subject}] = &instance{firing: true, alertID: a.ID, started: a.StartedAt}
}

// Bind records the stored id of a fired alert, which its resolve event
// carries.
func (e *Evaluator) Bind(a Alert) {
	if in := e.inst[instKey{a.RuleID, a.AF, a.Subject}]; in != nil && in.firing {
		in.alertID = a.ID
	}
}

// Prune drops history and moves older than keep before now.
func (e *Evaluator) Prune(now time.Time, keep time.Duration) {
	cut := now.Add(-keep)
	for k, h := range e.history {
		i := 0
		// Keep the newest snapshot at or before cut: it is the baseline
		// of a window that starts at cut.
		for i+1 < len(h) && !h[i+1].Time.After(cut) {
			i++
		}
		e.history[k] = slices.Clip(h[i:])
	}
	for k, ms := range e.moves {
		kept := ms[:0]
		for _, m := range ms {
			if m.Time.After(cut) {
				kept = append(kept, m)
			} else {
				delete(e.seen, moveKey{m.TargetID, m.AF, m.Probe, m.Time.UnixNano()})
			}
		}
		e.moves[k] = kept
	}
}

// condition is one subject's value under a rule now.
type condition struct {
	subject string
	value   float64
	active  bool // crosses the threshold
	clear   bool // inside the clear band (at or below Clear)
	summary string
	probes  []string
	before  *Snapshot // the "before" of the alert's site shares; nil means the window's baseline
}

// Eval evaluates rules at now against the history and returns the alerts
// that fired or resolved. Instances of rules no longer in rules are
// forgotten (their stored alerts are the store's business).
func (e *Evaluator) Eval(now time.Time, rules []Rule) []Event {
	var out []Event
	live := map[instKey]bool{}
	disabled := map[int64]bool{}
	for _, r := range rules {
		if !r.Enabled {
			// A disabled (muted) rule's alerts were resolved when it was
			// disabled: forget them, so enabling it starts afresh.
			disabled[r.ID] = true
			continue
		}
		r.Defaults()
		for _, af := range []int{4, 6} {
			if r.AF != 0 && r.AF != af {
				continue
			}
			k := track{r.TargetID, af}
			h := e.history[k]
			if len(h) == 0 {
				continue
			}
			cur := h[len(h)-1]
			base := baseline(h, now.Add(-r.window()))
			if r.Kind == KindSpeedOfLight || r.Kind == KindInflation {
				// The site shares of these alerts are of no interest,
				// and a check covers the window: compare nothing.
				base = cur
			}
			// Sites of firing instances are evaluated even when no
			// snapshot in the window has probes there any more: a lost
			// site stays lost after the window has moved past it.
			var firing []string
			for ik, in := range e.inst {
				if ik.rule == r.ID && ik.af == af && in.firing && ik.subject != "" {
					firing = append(firing, ik.subject)
				}
			}
			conds := e.conditions(r, af, base, cur, now, firing)
			seen := map[string]bool{}
			for _, c := range conds {
				seen[c.subject] = true
				ik := instKey{r.ID, af, c.subject}
				live[ik] = true
				if ev := e.step(r, ik, c, now, base, cur); ev != nil {
					out = append(out, *ev)
				}
			}
			// Firing instances whose subject no longer appears are clear.
			for ik, in := range e.inst {
				if ik.rule == r.ID && ik.af == af && in.firing && !seen[ik.subject] {
					live[ik] = true
					if ev := e.step(r, ik, condition{subject: ik.subject, clear: true, summary: "no longer observed"}, now, base, cur); ev != nil {
						out = append(out, *ev)
					}
				}
			}
		}
	}
	for ik, in := range e.inst {
		if !live[ik] && (!in.firing || disabled[ik.rule]) {
			delete(e.inst, ik)
		}
	}
	return out
}

// step advances one instance's hysteresis state machine:
// quiet -> pending (active) -> firing (active for ForSec) -> clearing
// (clear) -> resolved (clear for ResolveSec). Values between Clear and
// Threshold keep the current state, so a value hovering at the threshold
// does not fire and resolve over and over.
func (e *Evaluator) step(r Rule, ik instKey, c condition, now time.Time, base, cur Snapshot) *Event {
	in := e.inst[ik]
	if in == nil {
		in = &instance{}
		e.inst[ik] = in
	}
	if !in.firing {
		if !c.active {
			in.pendingSince = time.Time{}
			return nil
		}
		if in.pendingSince.IsZero() {
			in.pendingSince = now
		}
		if now.Sub(in.pendingSince) < time.Duration(r.ForSec)*time.Second {
			return nil
		}
		in.firing, in.clearSince, in.started, in.alertID = true, time.Time{}, now, 0
		return &Event{Alert: e.alert(r, ik, c, StatusFiring, in, now, base, cur)}
	}
	if !c.clear {
		in.clearSince = time.Time{}
		return nil
	}
	if in.clearSince.IsZero() {
		in.clearSince = now
	}
	if r.ResolveSec > 0 && now.Sub(in.clearSince) < time.Duration(r.ResolveSec)*time.Second {
		return nil
	}
	a := e.alert(r, ik, c, StatusResolved, in, now, base, cur)
	*in = instance{}
	return &Event{Alert: a}
}

func (e *Evaluator) alert(r Rule, ik instKey, c condition, st Status, in *instance, now time.Time, base, cur Snapshot) Alert {
	if c.before != nil {
		base = *c.before
	}
	a := Alert{ID: in.alertID, RuleID: r.ID, RuleName: r.Name, Kind: r.Kind, TargetID: r.TargetID, Target: r.Target,
		AF: ik.af, Subject: ik.subject, Status: st, StartedAt: in.started, Value: round2(c.value), Threshold: r.Threshold,
		Summary: c.summary, Sites: siteShares(base, cur), Probes: c.probes}
	if st == StatusResolved {
		t := now
		a.ResolvedAt = &t
	}
	if a.Probes == nil {
		a.Probes = []string{}
	}
	return a
}

// baseline is the newest snapshot at or before t, or the oldest kept.
func baseline(h []Snapshot, t time.Time) Snapshot {
	b := h[0]
	for _, s := range h {
		if s.Time.After(t) {
			break
		}
		b = s
	}
	return b
}

const maxSample = 20

func (e *Evaluator) conditions(r Rule, af int, base, cur Snapshot, now time.Time, extra []string) []condition {
	from := now.Add(-r.window())
	var moves []Move
	for _, m := range e.moves[track{r.TargetID, af}] {
		if m.Time.After(from) && !m.Time.After(now) {
			moves = append(moves, m)
		}
	}
	switch r.Kind {
	case KindShareChange:
		// The share now against the share a window ago: until the history
		// reaches back a whole window (after a start or restart) there
		// is nothing to compare with, and comparing with a catchment
		// whose probes were still enrolling would invent changes.
		if h := e.history[track{r.TargetID, af}]; len(h) == 0 || h[0].Time.After(from) {
			var out []condition
			for _, site := range extra { // firing alerts keep their state
				out = append(out, condition{subject: site})
			}
			return out
		}
		var out []condition
		for _, site := range addSites(siteUnion(base, cur), extra) {
			b, a := base.Sites[site], cur.Sites[site]
			d := cur.share(a) - base.share(b)
			// Only probes that moved (change events) count: probes
			// enrolling or going quiet shift shares without any route
			// changing, and must not page anyone.
			probes, moved := movedProbes(moves, site)
			dir := "rose"
			if d < 0 {
				dir = "fell"
			}
			out = append(out, condition{subject: site, value: math.Abs(d),
				active: math.Abs(d) > r.Threshold && moved >= r.MinProbes, clear: math.Abs(d) <= r.Clear,
				summary: fmt.Sprintf("site %s share %s from %.1f%% to %.1f%% (%d -> %d probes, IPv%d) within %s",
					site, dir, base.share(b), cur.share(a), b, a, af, r.window()),
				probes: probes})
		}
		return out
	case KindSiteLost:
		var out []condition
		// Every site with probes anywhere in the window, not only at its
		// ends: a site that gained probes after the window's start and
		// lost them again is lost too.
		var sites []string
		for _, s := range e.history[track{r.TargetID, af}] {
			if !s.Time.Before(base.Time) {
				for site, n := range s.Sites {
					if n > 0 {
						sites = append(sites, site)
					}
				}
			}
		}
		for _, site := range addSites(slices.Compact(slices.Sorted(slices.Values(sites))), extra) {
			// "Before" is the newest snapshot in the window with the
			// most probes at the site: the catchment the loss took away
			// (the window's start may predate probes enrolling).
			had, before := 0, base
			for _, s := range e.history[track{r.TargetID, af}] {
				if !s.Time.Before(base.Time) && s.Sites[site] >= had && s.Sites[site] > 0 {
					had, before = s.Sites[site], s
				}
			}
			now := cur.Sites[site]
			out = append(out, condition{subject: site, value: float64(had - now), before: &before,
				active: now == 0 && had >= r.MinProbes, clear: now > 0,
				summary: fmt.Sprintf("site %s lost all its probes (had %d within %s, IPv%d)", site, had, r.window(), af),
				probes:  sampleOf(movedProbes(moves, site))})
		}
		return out
	case KindUnreachable, KindUnidentified:
		n, what := cur.Unreachable, "unreachable"
		if r.Kind == KindUnidentified {
			n, what = cur.Unidentified, "unidentified"
		}
		v := cur.share(n)
		return []condition{{value: v, active: v > r.Threshold && n >= r.MinProbes, clear: v <= r.Clear,
			summary: fmt.Sprintf("%d of %d probes (%.1f%%) %s over IPv%d", n, cur.Total(), v, what, af)}}
	case KindBurst:
		probes := map[string]bool{}
		var sample []string
		for _, m := range moves {
			if !probes[m.Probe] {
				probes[m.Probe] = true
				if len(sample) < maxSample {
					sample = append(sample, m.Probe)
				}
			}
		}
		v := float64(len(probes))
		return []condition{{value: v, active: v > r.Threshold && len(probes) >= r.MinProbes, clear: v <= r.Clear,
			summary: fmt.Sprintf("%d probes moved within %s (IPv%d)", len(probes), r.window(), af), probes: sample}}
	case KindRegionFlap:
		return e.regionFlap(r, af, moves, extra)
	case KindSpeedOfLight, KindInflation:
		res, ok := e.checks[checkKey{r.TargetID, af, r.Kind}]
		if !ok {
			// Not checked yet (or the check failed): hold the state
			// rather than resolve a firing alert for want of data.
			return []condition{{}}
		}
		what := "(probe, site) pairs with results faster than light"
		if len(res.items) == 1 {
			what = "(probe, site) pair with results faster than light"
		}
		if r.Kind == KindInflation {
			what = "probes with an inflated RTT"
			if len(res.items) == 1 {
				what = "probe with an inflated RTT"
			}
		}
		var sample []string
		for _, f := range res.items[:min(len(res.items), maxSample)] {
			sample = append(sample, f.Detail)
		}
		v := float64(len(res.items))
		return []condition{{value: v, active: v > r.Threshold && len(res.items) >= r.MinProbes, clear: v <= r.Clear,
			summary: fmt.Sprintf("%d %s within %s (IPv%d, checked %s)", len(res.items), what, r.window(), af, res.at.UTC().Format(time.RFC3339)),
			probes:  sample}}
	case KindFlap:
		n := map[string]int{}
		for _, m := range moves {
			n[m.Probe]++
		}
		var flappers []string
		for p, c := range n {
			if c >= r.FlapChanges {
				flappers = append(flappers, p)
			}
		}
		slices.Sort(flappers)
		v := float64(len(flappers))
		return []condition{{value: v, active: v > r.Threshold && len(flappers) >= r.MinProbes, clear: v <= r.Clear,
			summary: fmt.Sprintf("%d probes changed site %d or more times within %s (IPv%d)", len(flappers), r.FlapChanges, r.window(), af),
			probes:  flappers[:min(len(flappers), maxSample)]}}
	}
	return nil
}

// regionFlap counts, per region of the rule's kind, the region's probes
// that changed place at least FlapChanges times within the window. The
// MinProbes floor is what keeps one noisy probe in a region quiet.
func (e *Evaluator) regionFlap(r Rule, af int, moves []Move, extra []string) []condition {
	regions, ok := e.regions[r.TargetID]
	if !ok {
		// Regions not read yet (or their read failed): hold the firing
		// regions rather than resolve them for want of data.
		var out []condition
		for _, key := range extra {
			out = append(out, condition{subject: key})
		}
		return out
	}
	n := map[string]int{}
	for _, m := range moves {
		n[m.Probe]++
	}
	flappers := map[string][]string{}
	for p, c := range n {
		if c < r.FlapChanges {
			continue
		}
		if key := regions[p].key(r.Region); key != "" {
			flappers[key] = append(flappers[key], p)
		}
	}
	var keys []string
	for k := range flappers {
		keys = append(keys, k)
	}
	var out []condition
	for _, key := range addSites(keys, extra) { // firing regions are evaluated even when calm
		ps := flappers[key]
		slices.Sort(ps)
		v := float64(len(ps))
		out = append(out, condition{subject: key, value: v, active: v > r.Threshold && len(ps) >= r.MinProbes, clear: v <= r.Clear,
			summary: fmt.Sprintf("%d probes in %s changed site %d or more times within %s (IPv%d)", len(ps), key, r.FlapChanges, r.window(), af),
			probes:  ps[:min(len(ps), maxSample)]})
	}
	return out
}

// movedProbes samples the probes that left or reached site, and counts
// them all.
func movedProbes(moves []Move, site string) (sample []string, n int) {
	seen := map[string]bool{}
	for _, m := range moves {
		if (m.From == site || m.To == site) && !seen[m.Probe] {
			seen[m.Probe] = true
			if len(sample) < maxSample {
				sample = append(sample, m.Probe)
			}
		}
	}
	return sample, len(seen)
}

func sampleOf(sample []string, _ int) []string { return sample }

func addSites(sites, extra []string) []string {
	for _, s := range extra {
		if !slices.Contains(sites, s) {
			sites = append(sites, s)
		}
	}
	slices.Sort(sites)
	return sites
}

func siteUnion(a, b Snapshot) []string {
	var out []string
	for s := range a.Sites {
		out = append(out, s)
	}
	for s := range b.Sites {
		if _, ok := a.Sites[s]; !ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func siteShares(base, cur Snapshot) []SiteShare {
	out := []SiteShare{}
	for _, s := range siteUnion(base, cur) {
		b, a := base.Sites[s], cur.Sites[s]
		out = append(out, SiteShare{Site: s, BeforeProbes: b, AfterProbes: a,
			BeforeShare: round2(base.share(b)), AfterShare: round2(cur.share(a))})
	}
	slices.SortFunc(out, func(x, y SiteShare) int {
		return cmp.Or(cmp.Compare(max(y.BeforeProbes, y.AfterProbes), max(x.BeforeProbes, x.AfterProbes)), cmp.Compare(x.Site, y.Site))
	})
	return out
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
