package catchment

import (
	"strings"
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
	Site     string       // set when State is StateSite
	Identity string       // identity string the site was derived from, if any
	Source   string       // the evidence source that named the site ("hostname_bind", "trace_hop", …), if any
	Kind     measure.Kind // of the result observed; "" when unknown
	RTT      *float64     // ms
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
	Source     string    // evidence source that named Site, or of the unmapped Identity ("" when unknown)
	SourceAt   time.Time // newest observation of Site by Source or a stronger source (zero unless a site)
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
//
// And one keeps evidence ranked across kinds of measurement: while a site
// named by one kind (DNS, HTTP, NTP, trace) is fresher than [SourceHold],
// another kind's observation does not move the track if it names a site
// by a weaker source (DNS identity over HTTP headers over … over trace
// hops, see [SourceStrength]), names no site at all, or got no answer: an
// NTP reply without a known refid, or an HTTP timeout, says nothing
// against a DNS identity or a trace hop. Such
// observations only count as seen. The kind that named the site is always
// heard (a server that answered "ams1" and now answers nothing has
// changed). Different kinds of measurement of one target thus cannot flap
// a track between what each can see.
func Advance(prev *Latest, o Observation) (next Latest, change *Change) {
	if prev != nil && !o.Time.After(prev.ObservedAt) {
		return *prev, nil
	}
	if prev != nil && prev.State == StateSite && prev.Source != "" && o.Time.Sub(prev.SourceAt) < SourceHold &&
		evidenceFamily(o.Kind, o.Source) != evidenceFamily("", prev.Source) &&
		(o.State == StateSite && SourceStrength(o.Source) > SourceStrength(prev.Source) || o.State != StateSite) {
		next = *prev
		next.ObservedAt = o.Time
		if o.State == StateSite && o.Site == prev.Site {
			next.RTT, next.ResultID = o.RTT, o.ResultID
		}
		return next, nil
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
		next.Source = o.Source // where the unmapped identity came from, for the rule it needs
	} else {
		next.Source, next.SourceAt = o.Source, o.Time
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

// Fold applies observations (in time order) to the tracks' latest states
// and returns the new latest state of every track observed, and the change
// events, in order. prev holds the stored state of tracks that have one.
func Fold(prev map[Key]Latest, obs []Observation) (latest map[Key]Latest, changes []Change) {
	latest = make(map[Key]Latest, len(prev))
	for _, o := range obs {
		var p *Latest
		if l, ok := latest[o.Key]; ok {
			p = &l
		} else if l, ok := prev[o.Key]; ok {
			p = &l
		}
		next, c := Advance(p, o)
		latest[o.Key] = next
		if c != nil {
			changes = append(changes, *c)
		}
	}
	return latest, changes
}

// evidenceFamily is the kind of measurement evidence comes from: the
// observation's kind when known, else the one its source implies.
func evidenceFamily(kind measure.Kind, source string) string {
	switch kind {
	case measure.KindIdentity, measure.KindDNS:
		return "dns"
	case measure.KindHTTP, measure.KindNTP, measure.KindTrace:
		return string(kind)
	}
	family, _, _ := strings.Cut(source, ":")
	switch family {
	case SourceHostnameBind, SourceIDServer, SourceNSID, SourceEgressAddr:
		return "dns"
	case SourceHTTPHeader, SourceHTTPBody:
		return "http"
	case SourceNTPRefID:
		return "ntp"
	case SourceTraceHop:
		return "trace"
	}
	return ""
}

// SourceHold is how long a site named by a stronger source stands against
// weaker evidence (see [Advance]): long enough to cover a few measurement
// intervals of the stronger kind, short enough that a real move to a site
// only weaker evidence can name shows within minutes.
const SourceHold = 10 * time.Minute

// SourceStrength ranks an evidence source across measurements: lower is
// stronger. A server's own statement of identity beats an inference: DNS
// identity strings (hostname_bind, id_server, nsid), then HTTP headers, the
// HTTP body, the NTP reference id, a resolver's egress address, and last
// the trace hops before the anycast address; no source at all is weakest.
func SourceStrength(source string) int {
	family, _, _ := strings.Cut(source, ":")
	switch family {
	case SourceHostnameBind, SourceIDServer, SourceNSID:
		return 0
	case SourceHTTPHeader:
		return 1
	case SourceHTTPBody:
		return 2
	case SourceNTPRefID:
		return 3
	case SourceEgressAddr:
		return 4
	case SourceTraceHop:
		return 5
	}
	return 6
}
