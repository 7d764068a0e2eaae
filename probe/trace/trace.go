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
// It is fast: a window of TTLs (all of them by default) is probed at once,
// TTL by TTL with all of a TTL's probes back to back, and the trace ends as
// soon as every TTL up to the destination is answered or timed out; TTLs
// beyond the destination are never waited for.
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
	n := (sp.MaxHops - sp.FirstHop + 1) * sp.ProbesPerHop
	f := newFlow(dst, sp, n)
	p, mode, err := openProber(f, opt.Mode)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer p.close()
	t := &tracer{p: p, dst: dst, spec: sp, now: opt.Now, total: s.Timeout()}
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

// tracer runs the probing schedule; everything happens on the caller's
// goroutine.
type tracer struct {
	p     prober
	dst   netip.Addr
	spec  measure.TraceSpec
	now   func() time.Time
	total time.Duration // bound on the whole run
}

type probeState struct {
	sent     bool
	answered bool
	done     bool // answered or timed out
	at       time.Time
	hp       measure.HopProbe
}

func (t *tracer) run(ctx context.Context, res *measure.TraceResult) (*measure.TraceResult, error) {
	if t.now == nil {
		t.now = time.Now
	}
	sp := t.spec
	P := sp.ProbesPerHop
	timeout := time.Duration(sp.TimeoutMS) * time.Millisecond
	res.FirstHop, res.MaxHops = sp.FirstHop, sp.MaxHops
	probes := make([]probeState, (sp.MaxHops-sp.FirstHop+1)*P)
	ttlOf := func(idx int) int { return sp.FirstHop + idx/P }

	stop := context.AfterFunc(ctx, t.p.unblock)
	defer stop()

	start := t.now()
	end := start.Add(t.total)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	stopTTL := sp.MaxHops + 1 // lowest TTL that got a final reply
	nextTTL := sp.FirstHop
	inflight := 0 // TTLs sent and not resolved
	var sendErr error
	sendTTL := func(ttl int) {
		for r := range P {
			idx := (ttl-sp.FirstHop)*P + r
			ps := &probes[idx]
			ps.sent, ps.at = true, t.now()
			if err := t.p.send(ttl, idx); err != nil {
				// A probe that could not leave is a timeout of its own.
				ps.done, ps.hp.Timeout = true, true
				sendErr = err
			}
		}
		inflight++
	}
	finish := func(err error) (*measure.TraceResult, error) {
		t.build(res, probes, stopTTL, nextTTL-1)
		if err == nil && res.Hops == nil && sendErr != nil {
			return res, fmt.Errorf("trace: send: %w", sendErr)
		}
		return res, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return finish(fmt.Errorf("trace: %w", err))
		}
		now := t.now()
		// Expire, count resolved TTLs, slide the window.
		inflight = 0
		var wake time.Time
		pending := false
		for ttl := sp.FirstHop; ttl < nextTTL && ttl <= stopTTL; ttl++ {
			open := false
			for r := range P {
				ps := &probes[(ttl-sp.FirstHop)*P+r]
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
		sentAny := false
		for inflight < sp.Window && nextTTL <= sp.MaxHops && nextTTL < stopTTL {
			sendTTL(nextTTL)
			nextTTL++
			sentAny = true
		}
		if sentAny {
			continue // recompute deadlines with the new probes
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
		if !ok || rp.idx < 0 || rp.idx >= len(probes) {
			continue
		}
		ps := &probes[rp.idx]
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
		if ttl := ttlOf(rp.idx); rp.final && ttl < stopTTL {
			stopTTL = ttl
		}
	}
}

// build fills res.Hops for TTLs first..last, stopping at the final TTL.
func (t *tracer) build(res *measure.TraceResult, probes []probeState, stopTTL, lastSent int) {
	sp := t.spec
	P := sp.ProbesPerHop
	last := min(lastSent, stopTTL, sp.MaxHops)
	res.Hops = nil
	for ttl := sp.FirstHop; ttl <= last; ttl++ {
		h := measure.Hop{TTL: ttl, Probes: make([]measure.HopProbe, P)}
		for r := range P {
			ps := probes[(ttl-sp.FirstHop)*P+r]
			if !ps.answered {
				ps.hp = measure.HopProbe{Timeout: true}
			}
			h.Probes[r] = ps.hp
		}
		res.Hops = append(res.Hops, h)
	}
	res.Reached = false
	if stopTTL <= last {
		dst := res.Hops[len(res.Hops)-1]
		for _, p := range dst.Probes {
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
