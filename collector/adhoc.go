package collector

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// Ad-hoc on-demand measurements measure an address that is no registered
// target (an admin asked for it through the API). The collector invents
// one measurement per (kind, family), id measure.AdhocID(request, kind,
// af), and pushes them to the selected probes in a LiveAdhoc message. Each
// probe applies its own policy (special ranges, spec limits, packet rate,
// workers) and either refuses, reported per probe, or runs them once and
// uploads the results through its spool and the normal signed, idempotent
// upload.
//
// Ingest accepts a result under an ad-hoc id only from a probe the request
// reached, for exactly that measurement's kind, address and family, and
// only until the request's deadline plus AdhocGrace, and only with a
// timestamp within the request's lifetime (its start minus AdhocSkew to
// its deadline plus AdhocGrace); anything else is
// rejected like an unscheduled measurement, so a probe cannot make up
// measurement ids. Accepted results are stored under the reserved target
// id AdhocTargetID, outside every registered target: they are not
// classified into catchment, and the results API (which lists by target)
// does not show them; GET /measurements/{id} does, while the request is
// remembered.

// AdhocTargetID is the target_id ad-hoc results are stored under. Target
// ids are an identity column starting at 1, so no target owns it.
const AdhocTargetID = 0

// AdhocGrace is how long after its deadline a request still accepts the
// results of the probes it asked (a probe whose upload was delayed); after
// it they are rejected and the probe drops them.
const AdhocGrace = 2 * time.Minute

// AdhocSkew is how far before a request's start an ad-hoc result's
// timestamp may be (the probe's clock running a little behind); results
// timed earlier, or after the deadline plus AdhocGrace, are rejected.
const AdhocSkew = 30 * time.Second

// AdhocRequest asks for an on-demand measurement of an address that is no
// registered target.
type AdhocRequest struct {
	Address string         // as asked (an IP literal or a hostname), for the status
	Addrs   []netip.Addr   // what to measure: at most one per family
	Kinds   []measure.Kind // identity, ping, trace or dns; empty: ping
	Probes  []string       // selected probes (unconnected ones are reported offline)
	Timeout time.Duration  // from now until pending probes time out; 0 means 30 s
}

// ErrBadAdhoc is wrapped by the errors of [Collector.StartAdhoc] about the
// request itself.
var ErrBadAdhoc = errors.New("invalid ad-hoc measurement")

// adhocMsm is what a result under an ad-hoc id must match.
type adhocMsm struct {
	kind measure.Kind
	addr netip.Addr
	af   int
}

// StartAdhoc pushes ad-hoc measurements of req.Addrs to the selected
// connected probes and returns the request at once. Unconnected probes
// get an offline event immediately.
func (c *Collector) StartAdhoc(req AdhocRequest) (*OnDemand, error) {
	kinds := slices.Compact(slices.Sorted(slices.Values(req.Kinds)))
	if len(kinds) == 0 {
		kinds = []measure.Kind{measure.KindPing}
	}
	for _, k := range kinds {
		if !slices.Contains(measure.AdhocKinds, k) {
			return nil, fmt.Errorf("ad-hoc: %w: kind %q (want identity, ping, trace or dns)", ErrBadAdhoc, k)
		}
	}
	var addrs []netip.Addr
	seenAF := map[int]bool{}
	for _, a := range req.Addrs {
		a = a.Unmap()
		af := afOf(a)
		if !a.IsValid() || a.Zone() != "" || seenAF[af] {
			return nil, fmt.Errorf("ad-hoc: %w: want at most one valid, zoneless address per family", ErrBadAdhoc)
		}
		seenAF[af] = true
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("ad-hoc: %w: no address", ErrBadAdhoc)
	}
	if req.Timeout <= 0 {
		req.Timeout = 30 * time.Second
	}
	var raw [8]byte
	rand.Read(raw[:])
	id := "od-" + hex.EncodeToString(raw[:])
	var msms []measure.Measurement
	spec := map[string]adhocMsm{}
	var ids, shown []string
	for _, a := range addrs {
		shown = append(shown, a.String())
		for _, k := range kinds {
			m := measure.Measurement{ID: measure.AdhocID(id, k, afOf(a)), Address: a.String(), Spec: measure.Spec{Kind: k}}
			msms = append(msms, m)
			ids = append(ids, m.ID)
			spec[m.ID] = adhocMsm{kind: k, addr: a, af: afOf(a)}
		}
	}
	if len(msms) > measure.MaxAdhoc {
		return nil, fmt.Errorf("ad-hoc: %w: %d measurements, at most %d", ErrBadAdhoc, len(msms), measure.MaxAdhoc)
	}
	now := c.cfg.Now()
	probes := slices.Compact(slices.Sorted(slices.Values(req.Probes)))
	o := &OnDemand{
		st: measure.OnDemandStatus{ID: id, Status: measure.OnDemandRunning, Address: req.Address, Addresses: shown,
			Measurements: ids, Probes: probes, Created: now.UTC(), Deadline: now.Add(req.Timeout).UTC()},
		pending: map[string]map[string]bool{},
		changed: make(chan struct{}),
		adhoc:   spec,
		asked:   map[string]bool{},
	}
	for _, pr := range probes {
		o.pending[pr] = map[string]bool{}
		for _, m := range ids {
			o.pending[pr][m] = true
		}
	}
	// Mark every selected probe as asked before sending: a fast probe's
	// upload must find it. Those the message does not reach are unmarked
	// below, under o.mu, before any result of theirs could be authorised.
	o.mu.Lock()
	for _, pr := range probes {
		o.asked[pr] = true
	}
	o.mu.Unlock()
	c.od.register(o, now)

	reached := c.live.sendTo(probes, measure.LiveMessage{Type: measure.LiveAdhoc, Request: id, Adhoc: msms})
	c.dispatched(o, probes, reached, now, req.Timeout)
	return o, nil
}

func afOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

// register makes o findable by id and by arriving results.
func (ods *onDemands) register(o *OnDemand, now time.Time) {
	ods.mu.Lock()
	defer ods.mu.Unlock()
	if ods.byID == nil {
		ods.byID = map[string]*OnDemand{}
	}
	ods.prune(now)
	ods.byID[o.st.ID] = o
	ods.live = append(ods.live, o)
	ods.nlive.Store(int32(len(ods.live)))
}

// adhocRequestOf returns the request id inside an ad-hoc measurement id.
func adhocRequestOf(msm string) string {
	rest, ok := strings.CutPrefix(msm, measure.AdhocPrefix)
	if !ok {
		return ""
	}
	req, _, _ := strings.Cut(rest, "/")
	return req
}

// authorizeAdhoc checks a result under an ad-hoc id: the request exists,
// asked this probe for exactly this measurement, and is live or within
// its grace period. It returns a rejection reason.
func (c *Collector) authorizeAdhoc(probe string, r *measure.Result, now time.Time) (reason, class string) {
	unasked := fmt.Sprintf("msm %q is not an ad-hoc measurement this probe was asked for", shorten(r.Measurement))
	o := c.OnDemandByID(adhocRequestOf(r.Measurement))
	if o == nil {
		return unasked, "unscheduled"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	m, ok := o.adhoc[r.Measurement]
	if !ok || !o.asked[probe] {
		return unasked, "unscheduled"
	}
	if deadline := o.st.Deadline; now.After(deadline.Add(AdhocGrace)) {
		return fmt.Sprintf("ad-hoc measurement %s ended at %s", shorten(r.Measurement), deadline.Format(time.RFC3339)), "unscheduled"
	}
	// The result's own time must fall within the request's lifetime: a
	// probe cannot backdate (or postdate) an ad-hoc result.
	if from, to := o.st.Created.Add(-AdhocSkew), o.st.Deadline.Add(AdhocGrace); r.Time.Before(from) || r.Time.After(to) {
		return fmt.Sprintf("ts %s is outside ad-hoc measurement %s's lifetime (%s to %s)", r.Time.UTC().Format(time.RFC3339), shorten(r.Measurement),
			from.Format(time.RFC3339), to.Format(time.RFC3339)), "unscheduled"
	}
	if r.Kind != m.kind {
		return fmt.Sprintf("kind %q does not match measurement %s (%s)", r.Kind, r.Measurement, m.kind), "unscheduled"
	}
	dst, err := netip.ParseAddr(r.Dst)
	if err != nil || dst.Unmap() != m.addr {
		return fmt.Sprintf("dst %s is not the address of measurement %s", shorten(r.Dst), r.Measurement), "unscheduled"
	}
	if r.AF != m.af {
		return fmt.Sprintf("af %d does not match measurement %s", r.AF, r.Measurement), "unscheduled"
	}
	// One result per probe and measurement: the request asked for one run.
	// The same result again (a retried upload) passes and is answered as
	// a duplicate by the store.
	key := probe + "\x00" + r.Measurement
	if first, ok := o.taken[key]; ok && first != r.ID {
		return fmt.Sprintf("ad-hoc measurement %s already has this probe's result", shorten(r.Measurement)), "unscheduled"
	}
	if o.taken == nil {
		o.taken = map[string]measure.UUID{}
	}
	o.taken[key] = r.ID
	r.Probe = probe
	r.Target = ""
	return "", ""
}
