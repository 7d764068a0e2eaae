package catchment

import (
	"time"

	"github.com/anycatch/anycatch/measure"
)

// State classifies one observation of a target from a probe.
type State string

const (
	StateSite         State = "site"         // identified: Site is set
	StateUnidentified State = "unidentified" // answered, but no rule maps the identity (or no identity)
	StateUnreachable  State = "unreachable"  // no answer at all
)

// Key identifies one catchment track: a probe measuring one target over one
// address family.
type Key struct {
	Target int
	Probe  string
	AF     int
}

// Observation is one identified result, the input to [Advance].
type Observation struct {
	Key
	Time     time.Time
	State    State
	Site     string   // set when State is StateSite
	Identity string   // identity string the site was derived from, if any
	Source   string   // the evidence source that named the site ("hostname_bind", "trace_hop", …), if any
	RTT      *float64 // ms
	ResultID measure.UUID
}

// Latest is the current catchment of one track.
type Latest struct {
	Key
	State      State
	Site       string
	Identity   string
	RTT        *float64
	ObservedAt time.Time // time of the newest observation
	Since      time.Time // first observation of the current state/site
	ResultID   measure.UUID
}

// Change is one catchment change event: the track moved From -> To.
// From is nil for a track's first observation.
type Change struct {
	Key
	Time     time.Time
	From     *Latest // previous state, nil on first observation
	To       Latest
	ResultID measure.UUID
}

// place is where an observation or a latest state puts the probe: the site
// code, or for an unmapped answer the raw identity (marked so it cannot
// collide with a site code), or "" when nothing is known.
func place(state State, site, identity string) string {
	switch {
	case state == StateSite || site != "":
		return site
	case identity != "":
		return "?" + identity
	case state == StateUnidentified:
		return "?"
	}
	return ""
}

// Advance folds one observation into a track's latest state. prev is nil
// when the track has no state yet. It returns the new latest state and,
// when the probe's place (site, or unmapped identity) differs from the last
// known one, the change event.
//
// Two rules keep change events meaningful:
//   - An unreachable observation (timeout, error) says nothing about which
//     site serves the probe: the track's state becomes unreachable but it
//     keeps its last known site and identity, and no event is emitted. When
//     answers return from the same site, nothing changed; from another site,
//     one event from the last known site is emitted.
//   - Observations not newer than prev.ObservedAt (late uploads from a
//     probe's spool) do not move the track back in time: next is prev
//     unchanged and no change is emitted, so replaying a backlog cannot
//     invent flaps.
func Advance(prev *Latest, o Observation) (next Latest, change *Change) {
	if prev != nil && !o.Time.After(prev.ObservedAt) {
		return *prev, nil
	}
	if o.State == StateUnreachable {
		if prev == nil {
			return Latest{Key: o.Key, State: StateUnreachable, ObservedAt: o.Time, Since: o.Time, ResultID: o.ResultID}, nil
		}
		next = *prev
		next.State = StateUnreachable
		next.RTT = nil
		next.ObservedAt = o.Time
		next.ResultID = o.ResultID
		return next, nil
	}
	next = Latest{
		Key:        o.Key,
		State:      o.State,
		Site:       o.Site,
		Identity:   o.Identity,
		RTT:        o.RTT,
		ObservedAt: o.Time,
		Since:      o.Time,
		ResultID:   o.ResultID,
	}
	if o.State != StateSite {
		next.Site = ""
	}
	prevPlace := ""
	if prev != nil {
		prevPlace = place(prev.State, prev.Site, prev.Identity)
	}
	if prevPlace != "" && prevPlace == place(next.State, next.Site, next.Identity) {
		next.Since = prev.Since
		return next, nil
	}
	c := &Change{Key: o.Key, Time: o.Time, To: next, ResultID: o.ResultID}
	if prevPlace != "" {
		p := *prev
		c.From = &p
	}
	return next, c
}
