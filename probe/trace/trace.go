// Package trace is the probe's Paris-style traceroute engine (ICMP echo or
// UDP probes) returning a [measure.TraceResult].
//
// Every probe of one trace carries the same flow identifier, so per-flow
// load balancers keep it on one path: ICMP probes keep the ICMP checksum
// constant (the sequence number varies and a payload word compensates),
// UDP probes keep their ports constant and differ only in the UDP checksum
// (a payload word sets it). Replies are matched by the quoted probe:
// inner destination plus echo id/sequence, or UDP ports/checksum.
//
// It is fast: a window of TTLs is probed at once, lowest TTL first with
// all of a TTL's probes back to back, and the trace ends as soon as every
// TTL up to the destination is answered or timed out; TTLs beyond the
// destination are never waited for.
//
// It spares the destination's ICMP rate limiter (Linux answers a burst of
// about six errors per source, then one a second; real routers are
// stricter), because every probe past the destination costs one of its
// answers, and the next trace from the same source would find it silent:
//   - A destination of unknown distance gets all probes only at the first
//     coldDense TTLs of the window, one probe at the TTLs beyond; a TTL's
//     other probes follow once an answer shows it is not past the
//     destination: a router's at the TTL below it or later, or the
//     destination's at it or later.
//   - A destination traced before in this process (see [Distances]) is
//     probed only up to its last distance, reaching further only when a
//     router answers there or the TTL stays silent.
//   - When the destination answered only past a silent gap of TTLs, yet
//     its reply TTL (or the remembered distance) puts it inside the gap,
//     the gap is re-probed after a pause (bounded rounds, one probe per
//     TTL); if that stays silent too, the hops end at the distance the
//     reply TTL implies, marked dest_ttl_inferred, instead of listing
//     phantom hops up to where the limiter happened to answer.
//
// Privileged ("raw"): a raw ICMP socket receives the replies; ICMP probes
// go out on it, UDP probes on a UDP socket. Unprivileged ("recverr"): a
// UDP socket (or an ICMP datagram socket for ICMP probes, when
// ping_group_range allows) with IP_RECVERR reads the errors from its error
// queue, as tracepath does; that path sees no ICMP extensions (MPLS).
package trace

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

// Modes.
const (
	ModeRaw     = "raw"
	ModeRecvErr = "recverr"
)

// payloadLen is the probe payload size (ICMP or UDP), like traceroute's
// default 60-byte packets.
const payloadLen = 32

// Options tunes a run. The zero value picks the socket automatically and
// uses the real clock.
type Options struct {
	// Mode forces "raw" or "recverr"; "" tries raw, then recverr.
	Mode string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Distances remembers how far each destination was; nil means one
	// table shared by the whole process.
	Distances *Distances
}

// Detect reports the trace mode this process can use: "raw" with
// CAP_NET_RAW, otherwise "recverr" (UDP needs no privilege; ICMP probes
// then also need ping_group_range), or "" if no socket can be opened.
func Detect() string {
	if c, err := icmpwire.ListenICMP(false, false); err == nil {
		c.Close()
		return ModeRaw
	}
	if c, err := icmpwire.ListenErrQueue(false, icmpwire.ProtoUDP, netip.Addr{}, true); err == nil {
		c.Close()
		return ModeRecvErr
	}
	return ""
}

// reply is what came back for one probe.
type reply struct {
	idx   int // probe index: (ttl-first)*probesPerHop + round
	from  netip.Addr
	ttl   int // TTL / hop limit of the reply
	typ   uint8
	code  uint8
	final bool // destination answered or unreachable: no TTL beyond matters
	mpls  []measure.MPLSLabel
}

// prober sends a trace's probes and turns what comes back into replies.
// recv returns ok=false when deadline passes with nothing matched.
type prober interface {
	send(ttl, idx int) error
	recv(ctx context.Context, deadline time.Time) (r reply, ok bool, err error)
	unblock() // make a pending recv return now (ctx cancelled)
	close() error
}

// Run traces the path to dst per spec (zero fields take measure's
// defaults). Timeouts are results; the error is set only when nothing
// could be measured, or with the partial result when ctx ended the run.
func Run(ctx context.Context, dst netip.Addr, spec measure.TraceSpec, opt Options) (*measure.TraceResult, error) {
	s := measure.Spec{Kind: measure.KindTrace, Trace: &spec}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast() {
		return nil, fmt.Errorf("trace: invalid destination %v", dst)
	}
	sp := *s.WithDefaults().Trace
	f := newFlow(dst, sp, probeCount(sp))
	p, mode, err := openProber(f, opt.Mode)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer p.close()
	dist := opt.Distances
	if dist == nil {
		dist = &defaultDistances
	}
	t := &tracer{p: p, dst: dst, spec: sp, now: opt.Now, total: s.Timeout(), dist: dist}
	return t.run(ctx, newResult(f, sp, mode))
}

func newResult(f *flow, sp measure.TraceSpec, mode string) *measure.TraceResult {
	res := &measure.TraceResult{Proto: sp.Proto, Mode: mode, Paris: true}
	if f.proto == icmpwire.ProtoUDP {
		res.SrcPort, res.DstPort = int(f.sport), int(f.dport)
	} else {
		res.FlowID = f.flowID
	}
	return res
}

func openProber(f *flow, mode string) (prober, string, error) {
	switch mode {
	case ModeRaw:
		p, err := openRaw(f)
		return p, ModeRaw, err
	case ModeRecvErr:
		p, err := openRecvErr(f)
		return p, ModeRecvErr, err
	case "":
		p, err := openRaw(f)
		if err == nil {
			return p, ModeRaw, nil
		}
		p, err2 := openRecvErr(f)
		if err2 == nil {
			return p, ModeRecvErr, nil
		}
		return nil, "", errors.Join(err, err2)
	}
	return nil, "", fmt.Errorf("unknown trace mode %q", mode)
}

// Schedule tuning. See the package comment for the why.
const (
	// coldDense is how many TTLs from first_hop a trace to a destination
	// of unknown distance probes with every probe of the hop in its first
	// wave; the rest of the window gets one probe per TTL, and its other
	// probes only once an answer shows the TTL is not past the
	// destination.
	coldDense = 10
	// grownDense is how many TTLs past a remembered distance that turned
	// out to be a router get all their probes at once.
	grownDense = 3
	// maxRetries bounds the repair rounds, and so the repair probes per TTL.
	maxRetries = 2
	// retryPause lets ICMP rate limiters refill before a repair round
	// (Linux: one error per second per source once the burst is spent).
	retryPause = time.Second
	// maxRetryTTLs bounds the TTLs one repair round probes, one probe each.
	maxRetryTTLs = 4
)

// probeCount is the size of a trace's probe index space: the planned
// probes, TTL by TTL, then maxRetries repair slots per TTL.
func probeCount(sp measure.TraceSpec) int {
	return (sp.MaxHops - sp.FirstHop + 1) * (sp.ProbesPerHop + maxRetries)
}

// tracer runs the probing schedule; everything happens on the caller's
// goroutine.
type tracer struct {
	p     prober
	dst   netip.Addr
	spec  measure.TraceSpec
	now   func() time.Time
	total time.Duration // bound on the whole run
	dist  *Distances    // nil: remember nothing
}

type probeState struct {
	sent     bool
	answered bool
	done     bool // answered or timed out
	at       time.Time
	hp       measure.HopProbe
}

// hopState counts what went out at one TTL.
type hopState struct {
	sent    int // planned probes sent: indexes (ttl-first)*P + 0..sent-1
	retries int // repair probes sent
}

// schedule is one run's probe bookkeeping; its methods are pure.
type schedule struct {
	first, P, H int
	probes      []probeState
	hops        []hopState
}

func (s *schedule) idx(ttl, r int) int   { return (ttl-s.first)*s.P + r }
func (s *schedule) retry(ttl, r int) int { return s.H*s.P + (ttl-s.first)*maxRetries + r }

func (s *schedule) ttlOf(idx int) int {
	if idx < s.H*s.P {
		return s.first + idx/s.P
	}
	return s.first + (idx-s.H*s.P)/maxRetries
}

// sentAt returns the indexes of every probe sent with ttl, planned ones
// first.
func (s *schedule) sentAt(ttl int, out []int) []int {
	h := s.hops[ttl-s.first]
	for r := range h.sent {
		out = append(out, s.idx(ttl, r))
	}
	for r := range h.retries {
		out = append(out, s.retry(ttl, r))
	}
	return out
}

func (s *schedule) answered(ttl int) bool {
	var buf [2 * measure.MaxProbesPerHop]int
	for _, i := range s.sentAt(ttl, buf[:0]) {
		if s.probes[i].answered {
			return true
		}
	}
	return false
}

// gapStart returns the lowest TTL of the run of unanswered TTLs just
// below stop (stop itself when stop-1 answered).
func (s *schedule) gapStart(stop int) int {
	g := stop
	for g > s.first && !s.answered(g-1) {
		g--
	}
	return g
}

// destDistance estimates the destination's distance in hops from the TTL
// of its reply, assuming it started at the usual 64, 128 or 255 and came
// back over as many hops as the probe went; 0 when unknown.
func destDistance(replyTTL int) int {
	for _, init := range []int{64, 128, 255} {
		if replyTTL > 0 && replyTTL <= init {
			return init - replyTTL + 1
		}
	}
	return 0
}

// estimate returns the destination's distance its own replies at stop
// suggest, when that falls in the silent gap [g0, stop): the nearer
// probes reached it and went unanswered, as when it rate-limits ICMP
// errors. 0 otherwise (no gap, no reply TTL, or an estimate the routers'
// answers contradict, as on an asymmetric return path).
func (s *schedule) estimate(dst netip.Addr, stop, g0 int) int {
	var buf [2 * measure.MaxProbesPerHop]int
	for _, i := range s.sentAt(stop, buf[:0]) {
		ps := &s.probes[i]
		if !ps.answered || ps.hp.From != dst.WithZone("").String() {
			continue
		}
		if k := destDistance(ps.hp.ReplyTTL); k >= g0 && k < stop {
			return k
		}
		return 0
	}
	return 0
}

// repairRange picks the TTLs a repair round re-probes: around the
// distance the destination's reply TTL (else the remembered distance)
// puts it at, within the silent gap below stop. ok is false when nothing
// suggests the destination is nearer than stop: a gap of routers that
// never answer is left alone.
func (s *schedule) repairRange(dst netip.Addr, stop, hint int) (lo, hi int, ok bool) {
	g0 := s.gapStart(stop)
	if g0 == stop {
		return 0, 0, false
	}
	k := s.estimate(dst, stop, g0)
	if k == 0 && hint >= g0 && hint < stop {
		k = hint
	}
	if k == 0 {
		return 0, 0, false
	}
	lo, hi = max(g0, k-1), min(stop-1, k-1+maxRetryTTLs-1)
	return lo, hi, lo <= hi
}

func (t *tracer) run(ctx context.Context, res *measure.TraceResult) (*measure.TraceResult, error) {
	if t.now == nil {
		t.now = time.Now
	}
	sp := t.spec
	P := sp.ProbesPerHop
	timeout := time.Duration(sp.TimeoutMS) * time.Millisecond
	res.FirstHop, res.MaxHops = sp.FirstHop, sp.MaxHops
	H := sp.MaxHops - sp.FirstHop + 1
	s := &schedule{first: sp.FirstHop, P: P, H: H, probes: make([]probeState, probeCount(sp)), hops: make([]hopState, H)}

	stop := context.AfterFunc(ctx, t.p.unblock)
	defer stop()

	start := t.now()
	end := start.Add(t.total)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	stopTTL := sp.MaxHops + 1 // lowest TTL that got a final reply
	nextTTL := sp.FirstHop
	// TTLs up to dense get all P probes; beyond it one, until an answer
	// shows the TTL is not past the destination. The first wave goes no
	// further than frontier.
	dense := sp.FirstHop + coldDense - 1
	frontier := sp.MaxHops
	hint := t.dist.get(t.dst.WithZone(""), start)
	if hint < sp.FirstHop || hint > sp.MaxHops {
		hint = 0
	} else {
		dense, frontier = hint, hint
	}
	repairs := 0 // repair rounds sent
	var repairAt time.Time
	var sendErr error
	send := func(ttl, idx int) {
		ps := &s.probes[idx]
		ps.sent, ps.at = true, t.now()
		if err := t.p.send(ttl, idx); err != nil {
			// A probe that could not leave is a timeout of its own.
			ps.done, ps.hp.Timeout = true, true
			sendErr = err
		}
	}
	sendPlanned := func(ttl, upto int) {
		h := &s.hops[ttl-sp.FirstHop]
		for ; h.sent < upto; h.sent++ {
			send(ttl, s.idx(ttl, h.sent))
		}
	}
	finish := func(err error) (*measure.TraceResult, error) {
		t.build(res, s, stopTTL, nextTTL-1)
		if err == nil {
			k := 0
			if res.Reached {
				k = res.Hops[len(res.Hops)-1].TTL
			}
			t.dist.put(t.dst.WithZone(""), k, t.now())
		}
		if err == nil && res.Hops == nil && sendErr != nil {
			return res, fmt.Errorf("trace: send: %w", sendErr)
		}
		return res, err
	}
	var idxBuf [2 * measure.MaxProbesPerHop]int
	for {
		if err := ctx.Err(); err != nil {
			return finish(fmt.Errorf("trace: %w", err))
		}
		now := t.now()
		// Expire, count unresolved TTLs (the window), find the next wake.
		inflight := 0
		var wake time.Time
		pending := false
		for ttl := sp.FirstHop; ttl < nextTTL && ttl <= stopTTL; ttl++ {
			open := false
			for _, i := range s.sentAt(ttl, idxBuf[:0]) {
				ps := &s.probes[i]
				if ps.done {
					continue
				}
				dl := ps.at.Add(timeout)
				if !now.Before(dl) {
					ps.done, ps.hp.Timeout = true, true
					continue
				}
				open = true
				if wake.IsZero() || dl.Before(wake) {
					wake = dl
				}
			}
			if open {
				inflight++
				pending = true
			}
		}
		// The remembered distance neither answered nor was passed: the
		// path changed; go on as with an unknown distance.
		if !pending && nextTTL > frontier && stopTTL > sp.MaxHops {
			frontier = sp.MaxHops
		}
		sentAny := false
		if repairs == 0 {
			// The rest of the probes for TTLs now known not to be past
			// the destination, lowest TTL first.
			for ttl := sp.FirstHop; ttl < nextTTL && ttl < stopTTL; ttl++ {
				if ttl <= dense && s.hops[ttl-sp.FirstHop].sent < P {
					sendPlanned(ttl, P)
					sentAny = true
				}
			}
		}
		for inflight < sp.Window && nextTTL <= frontier && nextTTL < stopTTL {
			n := 1
			if nextTTL <= dense {
				n = P
			}
			sendPlanned(nextTTL, n)
			nextTTL++
			inflight++
			sentAny = true
		}
		if sentAny {
			continue // recompute deadlines with the new probes
		}
		if !pending && repairs < maxRetries && stopTTL <= sp.MaxHops {
			if lo, hi, ok := s.repairRange(t.dst, stopTTL, hint); ok {
				if repairAt.IsZero() {
					repairAt = now.Add(retryPause)
				}
				switch {
				case repairAt.Add(timeout).After(end):
					repairs = maxRetries // no time left for a round
				case !now.Before(repairAt):
					for ttl := lo; ttl <= hi; ttl++ {
						h := &s.hops[ttl-sp.FirstHop]
						send(ttl, s.retry(ttl, h.retries))
						h.retries++
					}
					repairs++
					repairAt = time.Time{}
					continue
				default:
					// Pause, still taking late replies.
					pending, wake = true, repairAt
				}
			}
		}
		if !pending || !now.Before(end) {
			return finish(nil)
		}
		if wake.After(end) {
			wake = end
		}
		rp, ok, err := t.p.recv(ctx, wake)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return finish(fmt.Errorf("trace: receive: %w", err))
		}
		if !ok || rp.idx < 0 || rp.idx >= len(s.probes) {
			continue
		}
		ps := &s.probes[rp.idx]
		if !ps.sent || ps.answered {
			continue // duplicate, or a reply to a probe never sent
		}
		at := t.now()
		ps.answered = true
		ps.hp = measure.HopProbe{
			From:     rp.from.String(),
			RTT:      ms(at.Sub(ps.at)),
			ReplyTTL: rp.ttl,
			ICMPType: int(rp.typ),
			ICMPCode: int(rp.code),
			MPLS:     rp.mpls,
			Late:     ps.done, // timed out already
		}
		ps.done = true
		ttl := s.ttlOf(rp.idx)
		if rp.final {
			stopTTL = min(stopTTL, ttl)
			// Complete the TTLs up to the destination; when its reply TTL
			// puts it below a silent gap (rate limited), only up to there:
			// the repair round covers the gap.
			k := s.estimate(t.dst, stopTTL, s.gapStart(stopTTL))
			if k == 0 {
				k = stopTTL
			}
			dense = max(dense, k)
			continue
		}
		// A router: the destination is farther.
		dense = max(dense, ttl+1)
		if ttl >= frontier && frontier < sp.MaxHops {
			// The remembered distance is a router now: the path grew,
			// most often by a hop or two.
			frontier = sp.MaxHops
			dense = max(dense, ttl+grownDense)
		}
	}
}

// build fills res.Hops for TTLs first..last, stopping at the final TTL:
// every probe sent at each TTL, planned ones first, then repairs. When
// the destination answered only past a silent gap and its reply TTL puts
// it inside the gap, the hops end there with the destination's replies,
// and res.DestTTLInferred says so.
func (t *tracer) build(res *measure.TraceResult, s *schedule, stopTTL, lastSent int) {
	sp := t.spec
	last := min(lastSent, stopTTL, sp.MaxHops)
	res.Hops = nil
	res.Reached, res.DestTTLInferred = false, false
	var idx [2 * measure.MaxProbesPerHop]int
	hopAt := func(ttl int) measure.Hop {
		h := measure.Hop{TTL: ttl}
		for _, i := range s.sentAt(ttl, idx[:0]) {
			ps := s.probes[i]
			if !ps.answered {
				ps.hp = measure.HopProbe{Timeout: true}
			}
			h.Probes = append(h.Probes, ps.hp)
		}
		return h
	}
	if stopTTL <= last {
		if k := s.estimate(t.dst, stopTTL, s.gapStart(stopTTL)); k > 0 {
			last, res.DestTTLInferred = k, true
		}
	}
	for ttl := sp.FirstHop; ttl <= last; ttl++ {
		res.Hops = append(res.Hops, hopAt(ttl))
	}
	if res.DestTTLInferred {
		d := hopAt(stopTTL)
		d.TTL = last
		res.Hops[len(res.Hops)-1] = d
	}
	if stopTTL <= lastSent && len(res.Hops) > 0 {
		for _, p := range res.Hops[len(res.Hops)-1].Probes {
			if p.From == t.dst.WithZone("").String() {
				res.Reached = true
			}
		}
	}
}

// ms converts to milliseconds with microsecond resolution.
func ms(d time.Duration) float64 { return float64(int64(float64(d)/1e3+0.5)) / 1e3 }

func randUint16() uint16 {
	var b [2]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}
