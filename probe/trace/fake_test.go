package trace

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

// simNet is a simulated path on a simulated clock. Hop i (1-based) is
// routers[i-1]; the last entry is the destination. Every probe written is
// answered per the hop's behaviour; reads advance the clock to the next
// due reply or to the read deadline.
type simNet struct {
	v6       bool
	src      netip.Addr
	hops     []simHop
	now      time.Time
	deadline time.Time
	queue    []simPkt
	ttl      int
	sentICMP [][]byte // echo probes as sent
	sentUDP  [][]byte // UDP payloads as sent
	sport    uint16
	dport    uint16
	recverr  bool // deliver as error-queue entries instead of raw ICMP
	// extra, when set, is called per probe and may queue forged packets.
	extra func(n *simNet, ttl int, probe []byte)
}

type simHop struct {
	addr   netip.Addr
	delay  func(n int) time.Duration // per probe number at this hop; nil: 1ms*hop
	silent bool
	quote  int // bytes of the probe quoted after the IP header; 0 means all
	mpls   []measure.MPLSLabel
	dups   int
	count  int
	limit  *simLimiter // nil: answers every probe
	// drop, when set, silences the hop for probes sent with ttl at now.
	drop func(ttl int, now time.Time) bool
}

// simLimiter is Linux's per-source ICMP error limiter (inet_peer_xrlim_allow):
// a bucket of burst answers that refills one answer per interval. Echo
// replies are not limited.
type simLimiter struct {
	burst    int
	interval time.Duration
	tokens   time.Duration
	last     time.Time
	started  bool
	dropped  int
}

func (l *simLimiter) allow(now time.Time) bool {
	if !l.started {
		l.started, l.tokens, l.last = true, time.Duration(l.burst)*l.interval, now
	}
	l.tokens = min(l.tokens+now.Sub(l.last), time.Duration(l.burst)*l.interval)
	l.last = now
	if l.tokens < l.interval {
		l.dropped++
		return false
	}
	l.tokens -= l.interval
	return true
}

type simPkt struct {
	at   time.Time
	b    []byte
	from netip.Addr
	ttl  int
	qm   *icmpwire.QueueMsg
}

func (n *simNet) dst() netip.Addr { return n.hops[len(n.hops)-1].addr }

func (n *simNet) clock() time.Time { return n.now }

func (n *simNet) SetTTL(ttl int) error { n.ttl = ttl; return nil }

// WriteTo sends an ICMP echo probe.
func (n *simNet) WriteTo(b []byte, dst netip.Addr) error {
	b = append([]byte(nil), b...)
	n.sentICMP = append(n.sentICMP, b)
	n.route(b, icmpwire.ProtoICMP)
	return nil
}

// udpSide is the UDP sending half of the same simulated network.
type udpSide struct{ n *simNet }

func (u udpSide) SetTTL(ttl int) error { u.n.ttl = ttl; return nil }
func (u udpSide) Close() error         { return nil }
func (u udpSide) WriteTo(b []byte, dst netip.AddrPort) error {
	if u.n.recverr {
		return u.n.WriteToQueue(b, dst)
	}
	b = append([]byte(nil), b...)
	u.n.sentUDP = append(u.n.sentUDP, b)
	u.n.dport = dst.Port()
	cs := icmpwire.UDPChecksum(b, u.n.src, dst.Addr(), u.n.sport, dst.Port())
	pkt := icmpwire.AppendUDPHeader(nil, u.n.sport, dst.Port(), len(b), cs)
	u.n.route(append(pkt, b...), icmpwire.ProtoUDP)
	return nil
}

func (n *simNet) WriteToQueue(b []byte, dst netip.AddrPort) error {
	b = append([]byte(nil), b...)
	n.sentUDP = append(n.sentUDP, b)
	n.dport = dst.Port()
	pkt := icmpwire.AppendUDPHeader(nil, n.sport, dst.Port(), len(b), 0)
	n.route(append(pkt, b...), icmpwire.ProtoUDP)
	return nil
}

// route decides who answers the probe (transport header + payload).
func (n *simNet) route(probe []byte, proto uint8) {
	if n.extra != nil {
		n.extra(n, n.ttl, probe)
	}
	idx := min(n.ttl, len(n.hops)) - 1
	h := &n.hops[idx]
	h.count++
	if h.silent {
		return
	}
	delay := time.Duration(idx+1) * time.Millisecond
	if h.delay != nil {
		delay = h.delay(h.count - 1)
	}
	last := idx == len(n.hops)-1
	if h.limit != nil && !(last && proto == icmpwire.ProtoICMP) && !h.limit.allow(n.now) {
		return
	}
	if h.drop != nil && h.drop(n.ttl, n.now) {
		return
	}
	replyTTL := 65 - (idx + 1)
	var msg []byte
	var qm *icmpwire.QueueMsg
	switch {
	case last && proto == icmpwire.ProtoICMP:
		msg = append([]byte(nil), probe...)
		msg[0] = icmpwire.V4EchoReply
		if n.v6 {
			msg[0] = icmpwire.V6EchoReply
		}
	default:
		typ, code := uint8(icmpwire.V4TimeExceeded), uint8(0)
		if n.v6 {
			typ = icmpwire.V6TimeExceeded
		}
		if last {
			typ, code = icmpwire.V4Unreachable, 3
			if n.v6 {
				typ, code = icmpwire.V6Unreachable, 4
			}
		}
		if n.recverr {
			qm = &icmpwire.QueueMsg{Err: true, TTL: replyTTL, Payload: probe[8:],
				Ext: icmpwire.ExtendedErr{Origin: icmpwire.OriginICMP, Type: typ, Code: code, Offender: h.addr}}
			if h.quote > 0 {
				qm.Payload = qm.Payload[:max(0, min(len(qm.Payload), h.quote-8))]
			}
			break
		}
		ipProto := proto
		if n.v6 && proto == icmpwire.ProtoICMP {
			ipProto = icmpwire.ProtoICMPv6
		}
		q := icmpwire.AppendIPHeader(nil, n.src, n.dst(), ipProto, 1, 0, len(probe))
		q = append(q, probe...)
		if h.quote > 0 {
			hl := 20
			if n.v6 {
				hl = 40
			}
			q = q[:hl+h.quote]
		}
		var ext []byte
		if h.mpls != nil {
			ext = icmpwire.AppendMPLSExtension(nil, h.mpls)
		}
		msg = icmpwire.AppendError(nil, n.v6, typ, code, q, ext, false)
	}
	for range 1 + h.dups {
		n.queue = append(n.queue, simPkt{at: n.now.Add(delay), b: msg, from: h.addr, ttl: replyTTL, qm: qm})
	}
}

func (n *simNet) next() (simPkt, bool) {
	best := -1
	for i, p := range n.queue {
		if best < 0 || p.at.Before(n.queue[best].at) {
			best = i
		}
	}
	if best < 0 || n.queue[best].at.After(n.deadline) {
		if n.deadline.After(n.now) {
			n.now = n.deadline
		}
		return simPkt{}, false
	}
	p := n.queue[best]
	n.queue = append(n.queue[:best], n.queue[best+1:]...)
	if p.at.After(n.now) {
		n.now = p.at
	}
	return p, true
}

func (n *simNet) ReadFrom(b []byte) (int, int, netip.Addr, error) {
	p, ok := n.next()
	if !ok {
		return 0, 0, netip.Addr{}, timeoutErr{}
	}
	return copy(b, p.b), p.ttl, p.from, nil
}

func (n *simNet) Read(b, oob []byte) (icmpwire.QueueMsg, error) {
	p, ok := n.next()
	if !ok {
		return icmpwire.QueueMsg{}, timeoutErr{}
	}
	if p.qm != nil {
		m := *p.qm
		m.Payload = b[:copy(b, m.Payload)]
		return m, nil
	}
	return icmpwire.QueueMsg{From: p.from, TTL: p.ttl, Payload: b[:copy(b, p.b)]}, nil
}

func (n *simNet) SetReadDeadline(t time.Time) error { n.deadline = t; return nil }
func (n *simNet) Close() error                      { return nil }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// blockingNet never answers; reads block in real time until the deadline.
type blockingNet struct {
	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{}
}

func newBlockingNet() *blockingNet { return &blockingNet{changed: make(chan struct{})} }

func (c *blockingNet) SetTTL(int) error                 { return nil }
func (c *blockingNet) WriteTo([]byte, netip.Addr) error { return nil }
func (c *blockingNet) Close() error                     { return nil }
func (c *blockingNet) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}
func (c *blockingNet) ReadFrom([]byte) (int, int, netip.Addr, error) {
	for {
		c.mu.Lock()
		d, ch := c.deadline, c.changed
		c.mu.Unlock()
		wait := time.Until(d)
		if wait <= 0 {
			return 0, 0, netip.Addr{}, timeoutErr{}
		}
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-ch:
			tm.Stop()
		}
	}
}

func seqOf(b []byte) uint16 { return binary.BigEndian.Uint16(b[6:]) }
