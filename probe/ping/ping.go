// Package ping is the probe's ICMP echo engine: count echo requests at an
// interval to one destination, returning per-packet RTTs and reply TTLs,
// loss, duplicates and RTT statistics as a [measure.PingResult].
//
// It uses a raw ICMP socket when it has CAP_NET_RAW and falls back to an
// unprivileged ICMP datagram socket (Linux, net.ipv4.ping_group_range);
// the result's Mode says which. Each run has its own socket, a random echo
// id (raw) and a random payload nonce, so concurrent runs in one process
// never take each other's replies.
package ping

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

// Modes of the socket used.
const (
	ModeRaw   = "raw"   // raw ICMP socket (CAP_NET_RAW)
	ModeDgram = "dgram" // unprivileged ICMP datagram socket
)

// Options tunes a run. The zero value picks the socket automatically and
// uses the real clock.
type Options struct {
	// Mode forces "raw" or "dgram"; "" tries raw, then dgram.
	Mode string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// conn is the socket the engine needs; *icmpwire.Conn implements it and
// tests substitute a fake.
type conn interface {
	WriteTo(b []byte, dst netip.Addr) error
	ReadFrom(b []byte) (n, ttl int, src netip.Addr, err error)
	SetReadDeadline(t time.Time) error
	Close() error
}

var _ conn = (*icmpwire.Conn)(nil)

// Detect reports which ping mode this process can use for IPv4: "raw",
// "dgram" or "" (none).
func Detect() string {
	for _, dgram := range []bool{false, true} {
		if c, err := icmpwire.ListenICMP(false, dgram); err == nil {
			c.Close()
			if dgram {
				return ModeDgram
			}
			return ModeRaw
		}
	}
	return ""
}

// open opens a socket per opt.Mode, trying raw first in auto mode.
func open(v6 bool, mode string) (*icmpwire.Conn, string, error) {
	switch mode {
	case ModeRaw, ModeDgram:
		c, err := icmpwire.ListenICMP(v6, mode == ModeDgram)
		return c, mode, err
	case "":
		c, err := icmpwire.ListenICMP(v6, false)
		if err == nil {
			return c, ModeRaw, nil
		}
		c, err2 := icmpwire.ListenICMP(v6, true)
		if err2 == nil {
			return c, ModeDgram, nil
		}
		return nil, "", errors.Join(err, err2)
	}
	return nil, "", fmt.Errorf("unknown ping mode %q", mode)
}

// Run pings dst per spec (zero fields take measure's defaults). Loss is a
// result; the error is set only when nothing could be measured (invalid
// spec or address, no usable socket), or with the partial result when ctx
// ended the run early.
func Run(ctx context.Context, dst netip.Addr, spec measure.PingSpec, opt Options) (*measure.PingResult, error) {
	s := measure.Spec{Kind: measure.KindPing, Ping: &spec}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsUnspecified() {
		return nil, fmt.Errorf("ping: invalid destination %v", dst)
	}
	c, mode, err := open(dst.Is6(), opt.Mode)
	if err != nil {
		return nil, fmt.Errorf("ping: open socket: %w", err)
	}
	defer c.Close()
	var id uint16
	if kid, ok := c.EchoID(); ok {
		id = kid
	} else {
		id = randUint16()
		v6 := dst.Is6()
		t := []uint8{icmpwire.V4EchoReply}
		if v6 {
			t = []uint8{icmpwire.V6EchoReply}
		}
		_ = c.AcceptOnly(t...) // an optimisation only; matching does not rely on it
	}
	r := &runner{
		c: c, dst: dst, spec: *s.WithDefaults().Ping, mode: mode, id: id,
		now: opt.Now,
	}
	return r.run(ctx)
}

func randUint16() uint16 {
	var b [2]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}

// runner is one ping run; everything happens on the caller's goroutine.
type runner struct {
	c     conn
	dst   netip.Addr
	spec  measure.PingSpec
	mode  string
	id    uint16
	nonce [8]byte
	now   func() time.Time
}

type sent struct {
	at  time.Time
	got bool
}

func (r *runner) run(ctx context.Context) (*measure.PingResult, error) {
	if r.now == nil {
		r.now = time.Now
	}
	rand.Read(r.nonce[:])
	v6 := r.dst.Is6()
	interval := time.Duration(r.spec.IntervalMS) * time.Millisecond
	timeout := time.Duration(r.spec.TimeoutMS) * time.Millisecond
	res := &measure.PingResult{Mode: r.mode, Size: r.spec.Size}

	// A cancelled ctx must unblock a read; deadlines alone bound it too.
	stop := context.AfterFunc(ctx, func() { r.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	seqBase := randUint16()
	sends := make([]sent, r.spec.Count)
	start := r.now()
	end := start.Add(interval*time.Duration(r.spec.Count-1) + timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	nonce := r.nonce[:min(len(r.nonce), r.spec.Size)]
	pkt := make([]byte, 0, 8+r.spec.Size)
	buf := make([]byte, 1500+r.spec.Size)
	next := 0 // index of the next request to send
	unique := 0
	var rtts []float64
	for {
		if err := ctx.Err(); err != nil {
			return r.finish(res, rtts), fmt.Errorf("ping: %w", err)
		}
		now := r.now()
		if next < len(sends) && !now.Before(start.Add(interval*time.Duration(next))) {
			seq := seqBase + uint16(next)
			pkt = icmpwire.AppendEcho(pkt[:0], icmpwire.EchoProbe{V6: v6, ID: r.id, Seq: seq, Nonce: nonce, Size: r.spec.Size})
			sends[next].at = r.now()
			res.Sent++
			// A failed send (no route, buffer full) is a lost packet.
			_ = r.c.WriteTo(pkt, r.dst)
			next++
			if next == len(sends) {
				// The last request gets the full timeout.
				end = minTime(sends[next-1].at.Add(timeout), end)
				if d, ok := ctx.Deadline(); ok && d.Before(end) {
					end = d
				}
			}
			continue
		}
		if next == len(sends) && unique == len(sends) {
			break
		}
		if !now.Before(end) {
			break
		}
		wake := end
		if next < len(sends) {
			wake = minTime(wake, start.Add(interval*time.Duration(next)))
		}
		r.c.SetReadDeadline(wake)
		if ctx.Err() != nil {
			continue // AfterFunc may have run before this deadline replaced its own
		}
		n, ttl, src, err := r.c.ReadFrom(buf)
		if err != nil {
			if icmpwire.IsTimeout(err) || ctx.Err() != nil {
				continue
			}
			return r.finish(res, rtts), fmt.Errorf("ping: read: %w", err)
		}
		at := r.now()
		if src != r.dst.WithZone("") {
			continue // someone else's reply (raw sockets see all ICMP)
		}
		m, err := icmpwire.Parse(buf[:n], v6)
		if err != nil || !m.IsEchoReply(v6) || m.ID != r.id {
			continue
		}
		i := int(m.Seq - seqBase)
		if i >= next || len(m.Data) < len(nonce) || string(m.Data[:len(nonce)]) != string(nonce) {
			continue
		}
		rtt := ms(at.Sub(sends[i].at))
		rp := measure.PingReply{Seq: i, RTT: rtt, TTL: ttl}
		if sends[i].got {
			rp.Dup = true
			res.Duplicates++
		} else {
			sends[i].got = true
			unique++
			rtts = append(rtts, rtt)
		}
		if len(res.Replies) < measure.MaxPingReplies {
			res.Replies = append(res.Replies, rp)
		}
	}
	return r.finish(res, rtts), nil
}

func (r *runner) finish(res *measure.PingResult, rtts []float64) *measure.PingResult {
	res.Received = len(rtts)
	if len(rtts) == 0 {
		return res
	}
	slices.Sort(rtts)
	sum := 0.0
	for _, v := range rtts {
		sum += v
	}
	mn, mx := rtts[0], rtts[len(rtts)-1]
	avg := round3(sum / float64(len(rtts)))
	med := rtts[len(rtts)/2]
	if len(rtts)%2 == 0 {
		med = round3((rtts[len(rtts)/2-1] + rtts[len(rtts)/2]) / 2)
	}
	res.Min, res.Avg, res.Median, res.Max = &mn, &avg, &med, &mx
	return res
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ms converts to milliseconds with microsecond resolution.
func ms(d time.Duration) float64 { return round3(float64(d) / 1e6) }

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
