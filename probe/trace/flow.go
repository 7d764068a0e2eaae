package trace

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

// flow is what identifies one trace's probes on the wire.
type flow struct {
	v6      bool
	proto   uint8 // icmpwire.ProtoICMP or ProtoUDP (also for v6)
	dst     netip.Addr
	src     netip.Addr // local address, when known (UDP checksums need it)
	n       int        // probe indexes are 0..n-1
	id      uint16     // ICMP echo id (the kernel's, on datagram sockets)
	seqBase uint16     // ICMP: seq = seqBase + idx
	flowKey uint16     // ICMP: Paris compensation constant
	flowID  uint16     // ICMP checksum every probe carries, when known
	sport   uint16     // UDP
	dport   uint16
	csBase  uint16 // UDP: checksum = csBase + idx
	nonce   [8]byte
}

func newFlow(dst netip.Addr, sp measure.TraceSpec, n int) *flow {
	f := &flow{v6: dst.Is6(), dst: dst, n: n, dport: uint16(sp.Port)}
	f.proto = icmpwire.ProtoICMP
	if sp.Proto == "udp" {
		f.proto = icmpwire.ProtoUDP
	}
	randBytes(f.nonce[:])
	f.id = randUint16()
	f.seqBase = randUint16()
	f.flowKey = randUint16()
	// Keep csBase+idx away from 0 and 0xffff (0 means "no checksum").
	f.csBase = 1 + randUint16()%uint16(0xfffe-n-1)
	return f
}

// Payload layouts (payloadLen bytes, zero padded):
//
//	ICMP: [0:2] Paris checksum compensation, [2:10] nonce
//	UDP:  [0:2] checksum word, [2:4] probe index, [4:12] nonce
//
// The nonce is checked whenever a reply carries it, so replies to other
// runs and forged replies that do not know it are dropped.

// echo appends the ICMP echo request for probe idx.
func (f *flow) echo(b []byte, idx int) []byte {
	return icmpwire.AppendEcho(b, icmpwire.EchoProbe{
		V6: f.v6, ID: f.id, Seq: f.seqBase + uint16(idx), Nonce: f.nonce[:],
		Size: payloadLen, Paris: true, FlowKey: f.flowKey,
	})
}

// udpPayload appends the UDP payload for probe idx; its checksum (given
// the src address) is csBase+idx.
func (f *flow) udpPayload(b []byte, idx int) []byte {
	start := len(b)
	b = append(b, make([]byte, payloadLen)...)
	p := b[start:]
	binary.BigEndian.PutUint16(p[2:], uint16(idx))
	copy(p[4:], f.nonce[:])
	icmpwire.UDPChecksumPayload(p, f.src, f.dst, f.sport, f.dport, f.csBase+uint16(idx))
	return b
}

var (
	errForeign   = errors.New("not a reply to this trace")
	errTruncated = errors.New("quoted probe truncated")
	errNonce     = errors.New("nonce mismatch")
)

// finalType reports whether an ICMP error type ends the trace (unreachable).
func finalType(typ uint8, v6 bool) bool {
	if v6 {
		return typ == icmpwire.V6Unreachable
	}
	return typ == icmpwire.V4Unreachable
}

// match interprets one ICMP message b from src (read from a raw socket)
// as a reply to this trace. It allocates only for MPLS labels.
func (f *flow) match(b []byte, src netip.Addr, replyTTL int) (reply, error) {
	m, err := icmpwire.Parse(b, f.v6)
	if err != nil {
		return reply{}, err
	}
	r := reply{from: src, ttl: replyTTL, typ: m.Type, code: m.Code}
	if m.IsEchoReply(f.v6) {
		if f.proto != icmpwire.ProtoICMP || src != f.dst.WithZone("") || m.ID != f.id {
			return reply{}, errForeign
		}
		r.idx = int(m.Seq - f.seqBase)
		if r.idx >= f.n {
			return reply{}, errForeign
		}
		if len(m.Data) >= 10 && string(m.Data[2:10]) != string(f.nonce[:]) {
			return reply{}, errNonce
		}
		r.final = true
		return r, nil
	}
	if !icmpwire.IsError(m.Type, f.v6) {
		return reply{}, errForeign
	}
	q := &m.Quote
	inner := f.proto
	if f.v6 && inner == icmpwire.ProtoICMP {
		inner = icmpwire.ProtoICMPv6
	}
	if q.Dst != f.dst.WithZone("") || q.Proto != inner {
		return reply{}, errForeign
	}
	if f.src.IsValid() && q.Src.IsValid() && q.Src != f.src {
		return reply{}, errForeign
	}
	if !q.HasTransport() {
		return reply{}, errTruncated
	}
	switch f.proto {
	case icmpwire.ProtoICMP:
		id, seq, ok := q.Echo()
		if !ok || id != f.id {
			return reply{}, errForeign
		}
		r.idx = int(seq - f.seqBase)
		if len(q.Payload) >= 10 && string(q.Payload[2:10]) != string(f.nonce[:]) {
			return reply{}, errNonce
		}
	default:
		sport, dport, cs, ok := q.UDP()
		if !ok || sport != f.sport || dport != f.dport {
			return reply{}, errForeign
		}
		r.idx = int(cs - f.csBase)
		if len(q.Payload) >= 12 {
			// The payload is authoritative when quoted (a NAT may have
			// rewritten the checksum).
			if string(q.Payload[4:12]) != string(f.nonce[:]) {
				return reply{}, errNonce
			}
			r.idx = int(binary.BigEndian.Uint16(q.Payload[2:]))
		}
	}
	if r.idx >= f.n {
		return reply{}, errForeign
	}
	r.final = finalType(m.Type, f.v6)
	if m.Ext != nil {
		r.mpls = icmpwire.AppendMPLS(nil, m.Ext)
	}
	return r, nil
}

// matchQueued interprets one error-queue entry or datagram from an
// unprivileged socket.
func (f *flow) matchQueued(m *icmpwire.QueueMsg) (reply, error) {
	if !m.Err {
		// Ordinary data: an echo reply on an ICMP datagram socket, or a
		// UDP answer from the destination itself.
		if m.From != f.dst.WithZone("") {
			return reply{}, errForeign
		}
		if f.proto == icmpwire.ProtoUDP {
			return reply{}, errForeign // cannot tell which probe; the port-unreachable path is the norm
		}
		// Build a raw-style echo reply view and reuse the raw matcher.
		return f.match(m.Payload, m.From, m.TTL)
	}
	e := &m.Ext
	if e.Origin != icmpwire.OriginICMP && e.Origin != icmpwire.OriginICMP6 || !e.Offender.IsValid() {
		return reply{}, errForeign
	}
	r := reply{from: e.Offender, ttl: m.TTL, typ: e.Type, code: e.Code, final: finalType(e.Type, f.v6)}
	p := m.Payload
	switch f.proto {
	case icmpwire.ProtoICMP:
		// The quote starts at our echo header: type code csum id seq payload.
		if len(p) < 8 {
			return reply{}, errTruncated
		}
		r.idx = int(binary.BigEndian.Uint16(p[6:]) - f.seqBase)
		if len(p) >= 18 && string(p[10:18]) != string(f.nonce[:]) {
			return reply{}, errNonce
		}
	default:
		if len(p) < 12 {
			return reply{}, errTruncated
		}
		if string(p[4:12]) != string(f.nonce[:]) {
			return reply{}, errNonce
		}
		r.idx = int(binary.BigEndian.Uint16(p[2:]))
	}
	if r.idx >= f.n {
		return reply{}, errForeign
	}
	return r, nil
}
