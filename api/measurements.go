package api

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/anycatch/anycatch/measure"
)

// Live is the collector's live channel as the measurement endpoints use
// it (wire collector.Collector through a small adapter). A nil Live answers
// them with unavailable.
type Live interface {
	// ConnectedProbes lists the probes holding a live channel now.
	ConnectedProbes() []string
	// StartMeasurement starts an on-demand measurement and returns at
	// once. Errors: ErrNotFound for an unknown target, an *Error with
	// CodeInvalid for kinds the target does not measure.
	StartMeasurement(req LiveRequest) (LiveMeasurement, error)
	// Measurement returns a request started recently, or nil.
	Measurement(id string) LiveMeasurement
}

// LiveMeasurement is one on-demand measurement.
type LiveMeasurement interface {
	// Status returns the status with the events from index from on.
	Status(from int) measure.OnDemandStatus
	// Wait returns a channel closed at the next event.
	Wait() <-chan struct{}
}

// LiveRequest is what StartMeasurement runs.
type LiveRequest struct {
	Target  string       // registered target; "" for an ad-hoc address (Addrs)
	Address string       // ad-hoc: the address or hostname as asked
	Addrs   []netip.Addr // ad-hoc: what to measure, at most one per family
	Kinds   []measure.Kind
	AF      int
	Probes  []string
	Timeout time.Duration
}

// Measurement request limits.
const (
	maxMeasureLimit   = 1000
	defMeasureLimit   = 10
	defMeasureTimeout = 30 * time.Second
	maxMeasureTimeout = 5 * time.Minute
)

// MeasurementInput is the body of POST /measurements.
type MeasurementInput struct {
	Target     string         `json:"target"`
	Address    string         `json:"address"`
	Kinds      []measure.Kind `json:"kinds"`
	AF         int            `json:"af"`
	From       ProbeSelection `json:"from"`
	Limit      int            `json:"limit"`
	TimeoutSec int            `json:"timeout_sec"`
}

// ProbeSelection picks probes among those connected; the filters combine
// (AND). An empty selection, or Any, means any connected probe. Explicit
// Probes are taken as given, connected or not (those not connected are
// reported offline).
type ProbeSelection struct {
	Country   string   `json:"country"`
	Continent string   `json:"continent"`
	ASN       int64    `json:"asn"`
	Site      string   `json:"site"` // current catchment site for the target
	Probes    []string `json:"probes"`
	Any       bool     `json:"any"`
}

// quotas tracks on-demand measurements per principal: how many run at
// once and how many started in the last hour.
type quotas struct {
	mu      sync.Mutex
	started map[string][]time.Time
	running map[string][]LiveMeasurement
}

// admit reserves a slot for key or says how long to wait.
func (q *quotas) admit(key string, now time.Time, concurrent, perHour int) (time.Duration, string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started == nil {
		q.started, q.running = map[string][]time.Time{}, map[string][]LiveMeasurement{}
	}
	run := q.running[key][:0]
	for _, m := range q.running[key] {
		if m.Status(1<<30).Status != measure.OnDemandDone {
			run = append(run, m)
		}
	}
	q.running[key] = run
	if len(run) >= concurrent {
		return 5 * time.Second, fmt.Sprintf("at most %d on-demand measurements may run at once per key", concurrent)
	}
	hour := q.started[key][:0]
	for _, t := range q.started[key] {
		if now.Sub(t) < time.Hour {
			hour = append(hour, t)
		}
	}
	q.started[key] = hour
	if len(hour) >= perHour {
		return hour[0].Add(time.Hour).Sub(now), fmt.Sprintf("at most %d on-demand measurements per hour per key", perHour)
	}
	return 0, ""
}

func (q *quotas) record(key string, now time.Time, m LiveMeasurement) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.started[key] = append(q.started[key], now)
	q.running[key] = append(q.running[key], m)
}

var errNoLive = &Error{Code: CodeUnavailable, Message: "on-demand measurements need the collector role in this server"}

func (s *Server) createMeasurement(r *http.Request) (any, error) {
	if s.cfg.Live == nil {
		return nil, errNoLive
	}
	p := principalFrom(r.Context())
	if p.keyID == 0 {
		return nil, &Error{Code: CodeUnauthorized, Message: "on-demand measurements need an API key"}
	}
	var in MeasurementInput
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	var t Target
	var addrs []netip.Addr
	if in.Address != "" {
		if p.scope != ScopeAdmin {
			return nil, &Error{Code: CodeForbidden, Message: "measuring an arbitrary address needs an API key with scope admin; read keys may measure registered targets"}
		}
		a, err := s.adhocAddrs(r.Context(), in)
		if err != nil {
			return nil, err
		}
		addrs = a
	} else {
		if in.Target == "" {
			return nil, invalid("target", "required (or, with an admin key, address)")
		}
		var err error
		if t, err = s.store.GetTarget(r.Context(), in.Target); err != nil {
			return nil, err
		}
	}
	for _, k := range in.Kinds {
		if !slices.Contains([]measure.Kind{measure.KindIdentity, measure.KindPing, measure.KindTrace, measure.KindDNS}, k) {
			return nil, invalid("kinds", "unknown kind %q (want identity, ping, trace or dns)", k)
		}
	}
	if in.AF != 0 && in.AF != 4 && in.AF != 6 {
		return nil, invalid("af", "want 4, 6 or 0 (both)")
	}
	if in.Limit == 0 {
		in.Limit = defMeasureLimit
	}
	if in.Limit < 1 || in.Limit > maxMeasureLimit {
		return nil, invalid("limit", "want 1..%d", maxMeasureLimit)
	}
	timeout := defMeasureTimeout
	if in.TimeoutSec != 0 {
		timeout = time.Duration(in.TimeoutSec) * time.Second
		if timeout < 5*time.Second || timeout > maxMeasureTimeout {
			return nil, invalid("timeout_sec", "want 5..%d", int(maxMeasureTimeout.Seconds()))
		}
	}
	probes, err := s.selectProbes(r, t, in)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if wait, why := s.quotas.admit(p.rateKey, now, s.cfg.MeasureConcurrent, s.cfg.MeasurePerHour); wait > 0 {
		return nil, withHeader(&Error{Code: CodeRateLimited, Message: why}, "Retry-After", strconv.Itoa(int(max(wait, time.Second).Seconds())))
	}
	m, err := s.cfg.Live.StartMeasurement(LiveRequest{Target: t.Name, Address: in.Address, Addrs: addrs, Kinds: in.Kinds, AF: in.AF, Probes: probes, Timeout: timeout})
	if err != nil {
		return nil, err
	}
	s.quotas.record(p.rateKey, now, m)
	st := m.Status(0)
	return reply{status: http.StatusAccepted, header: http.Header{"Location": {"/api/v1/measurements/" + st.ID}}, body: st}, nil
}

// selectProbes applies the selection to the connected probes and picks at
// most in.Limit at random (so repeated requests spread over the fleet).
func (s *Server) selectProbes(r *http.Request, t Target, in MeasurementInput) ([]string, error) {
	f := in.From
	if len(f.Probes) > 0 {
		if len(f.Probes) > maxMeasureLimit {
			return nil, invalid("from.probes", "at most %d probes", maxMeasureLimit)
		}
		ps := slices.Compact(slices.Sorted(slices.Values(f.Probes)))
		return ps[:min(len(ps), in.Limit)], nil
	}
	cand := map[string]bool{}
	for _, p := range s.cfg.Live.ConnectedProbes() {
		cand[p] = true
	}
	if f.Country != "" || f.Continent != "" || f.ASN != 0 {
		pf := ProbeFilter{Limit: 1 << 20}
		if f.Country != "" {
			if !countryRE.MatchString(f.Country) {
				return nil, invalid("from.country", "want a two-letter ISO 3166-1 country code")
			}
			pf.Country = strings.ToUpper(f.Country)
		}
		if f.ASN != 0 {
			if f.ASN < 0 || f.ASN > 1<<32-1 {
				return nil, invalid("from.asn", "want an AS number like 64500")
			}
			pf.ASN = &f.ASN
		}
		rows, err := s.store.ListProbes(r.Context(), pf)
		if err != nil {
			return nil, err
		}
		keep := map[string]bool{}
		for _, p := range rows {
			if cand[p.ID] && (f.Continent == "" || strings.EqualFold(p.Continent, f.Continent)) {
				keep[p.ID] = true
			}
		}
		cand = keep
	}
	if f.Site != "" {
		rows, err := s.store.Catchment(r.Context(), CatchmentQuery{TargetID: t.ID, At: s.now(), Window: 24 * time.Hour, AF: in.AF})
		if err != nil {
			return nil, err
		}
		keep := map[string]bool{}
		for _, row := range rows {
			if cand[row.Probe] && row.Site == f.Site {
				keep[row.Probe] = true
			}
		}
		cand = keep
	}
	if len(cand) == 0 {
		return nil, invalid("from", "no connected probe matches the selection")
	}
	out := make([]string, 0, len(cand))
	for p := range cand {
		out = append(out, p)
	}
	slices.Sort(out)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	out = out[:min(len(out), in.Limit)]
	slices.Sort(out)
	return out, nil
}

// getMeasurement answers with the status and results so far, or streams
// the results as they arrive (Accept: application/x-ndjson or
// text/event-stream) until every selected probe answered or timed out.
func (s *Server) getMeasurement(r *http.Request) (any, error) {
	if s.cfg.Live == nil {
		return nil, errNoLive
	}
	m := s.cfg.Live.Measurement(chi.URLParam(r, "id"))
	if m == nil {
		return nil, notFound("measurement")
	}
	accept := r.Header.Get("Accept")
	sse := strings.Contains(accept, "text/event-stream")
	if !sse && !strings.Contains(accept, "application/x-ndjson") {
		return m.Status(0), nil
	}
	return stream(func(w http.ResponseWriter) { followMeasurement(w, r, m, sse) }), nil
}

// followMeasurement streams m's events as server-sent events or NDJSON
// until it is done or the client goes away.
func followMeasurement(w http.ResponseWriter, r *http.Request, m LiveMeasurement, sse bool) {
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not hold the stream back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	from := 0
	for {
		wait := m.Wait()
		st := m.Status(from)
		for i := range st.Events {
			ev := &st.Events[i]
			if sse {
				fmt.Fprintf(w, "event: %s\nid: %d\ndata: ", ev.Outcome, ev.Seq)
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			if sse {
				fmt.Fprint(w, "\n")
			}
		}
		from += len(st.Events)
		if st.Status == measure.OnDemandDone {
			if sse {
				st.Events = nil
				b, _ := json.Marshal(st)
				fmt.Fprintf(w, "event: done\ndata: %s\n\n", b)
			}
			_ = rc.Flush()
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-wait:
		case <-r.Context().Done():
			return
		}
	}
}
