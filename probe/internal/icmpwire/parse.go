package icmpwire

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/anycatch/anycatch/measure"
)

// Parse errors. They say why a reply was dropped; none is fatal.
var (
	ErrShort     = errors.New("icmp: message too short")
	ErrNotQuoted = errors.New("icmp: quoted packet missing or malformed")
)

// Message is a parsed ICMP or ICMPv6 message. Slices point into the
// buffer that was parsed.
type Message struct {
	Type, Code uint8
	// Echo request/reply fields.
	ID, Seq uint16
	Data    []byte // echo payload
	// Error messages (unreachable, time exceeded, ...): the quoted packet
	// and the raw RFC 4884 extension structure when present and valid.
	Quote Quote
	Ext   []byte
}

// IsEchoReply reports whether m is an echo reply of its family.
func (m *Message) IsEchoReply(v6 bool) bool {
	if v6 {
		return m.Type == V6EchoReply
	}
	return m.Type == V4EchoReply
}

// IsError reports whether m is an ICMP error carrying a quoted packet.
func IsError(typ uint8, v6 bool) bool {
	if v6 {
		return typ >= 1 && typ <= 4
	}
	switch typ {
	case V4Unreachable, V4TimeExceeded, V4ParamProblem, 4, 5: // 4 source quench, 5 redirect
		return true
	}
	return false
}

// Quote is the offending packet quoted in an ICMP error: its IP header and
// as much of the transport header as the router sent back.
type Quote struct {
	Src, Dst netip.Addr
	Proto    uint8
	IPID     uint16 // IPv4 only
	TTL      uint8  // remaining TTL / hop limit when the packet was dropped
	// Transport holds the quoted transport header bytes (up to 8); it is
	// shorter when the router truncated the quote.
	Transport []byte
	// Payload is whatever was quoted beyond the first 8 transport bytes.
	Payload []byte
}

// HasTransport reports whether the full first 8 transport bytes (ICMP
// type/code/checksum/id/seq or UDP ports/length/checksum) were quoted.
func (q *Quote) HasTransport() bool { return len(q.Transport) >= 8 }

// Ports returns the quoted UDP source and destination port and checksum.
func (q *Quote) UDP() (sport, dport, csum uint16, ok bool) {
	if q.Proto != ProtoUDP || len(q.Transport) < 8 {
		return 0, 0, 0, false
	}
	t := q.Transport
	return binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:]), binary.BigEndian.Uint16(t[6:]), true
}

// Echo returns the quoted echo request's id and sequence number.
func (q *Quote) Echo() (id, seq uint16, ok bool) {
	if len(q.Transport) < 8 {
		return 0, 0, false
	}
	t := q.Transport
	switch {
	case q.Proto == ProtoICMP && t[0] == V4EchoRequest,
		q.Proto == ProtoICMPv6 && t[0] == V6EchoRequest:
		return binary.BigEndian.Uint16(t[4:]), binary.BigEndian.Uint16(t[6:]), true
	}
	return 0, 0, false
}

// Parse parses one ICMP (v6 false) or ICMPv6 message b, starting at the
// ICMP header (the IP header already removed, as sockets deliver it). Error
// messages must quote at least an IP header; the transport part may be
// truncated, which the caller sees in [Quote.HasTransport].
func Parse(b []byte, v6 bool) (Message, error) {
	var m Message
	if len(b) < 8 {
		return m, ErrShort
	}
	m.Type, m.Code = b[0], b[1]
	switch {
	case !v6 && (m.Type == V4EchoReply || m.Type == V4EchoRequest),
		v6 && (m.Type == V6EchoReply || m.Type == V6EchoRequest):
		m.ID = binary.BigEndian.Uint16(b[4:])
		m.Seq = binary.BigEndian.Uint16(b[6:])
		m.Data = b[8:]
		return m, nil
	case !IsError(m.Type, v6):
		return m, nil
	}
	body := b[8:]
	orig, ext := splitExtension(b, v6)
	m.Ext = ext
	if orig != nil {
		body = orig
	}
	q, err := parseQuote(body)
	if err != nil {
		return m, err
	}
	m.Quote = q
	return m, nil
}

// splitExtension separates the original datagram from an RFC 4884
// extension structure. It returns nil, nil when there is none.
func splitExtension(b []byte, v6 bool) (orig, ext []byte) {
	body := b[8:]
	// Only these types may carry extensions (RFC 4884 section 4).
	var length, unit int
	if v6 {
		if b[0] != V6Unreachable && b[0] != V6TimeExceeded {
			return nil, nil
		}
		length, unit = int(b[4]), 8
	} else {
		if b[0] != V4Unreachable && b[0] != V4TimeExceeded && b[0] != V4ParamProblem {
			return nil, nil
		}
		length, unit = int(b[5]), 4
	}
	if length > 0 {
		n := length * unit
		if n > len(body) || !validExtension(body[n:]) {
			return nil, nil
		}
		return body[:n], body[n:]
	}
	// Pre-RFC 4884 implementations (RFC 4950's MPLS routers among them)
	// put the extension after exactly 128 bytes of original datagram and
	// leave the length zero. Accept that only when the structure checks.
	const compat = 128
	if len(body) > compat && validExtension(body[compat:]) {
		return body[:compat], body[compat:]
	}
	return nil, nil
}

// validExtension checks an extension header: version 2 and a correct
// checksum (a zero checksum is accepted as "not computed").
func validExtension(e []byte) bool {
	if len(e) < 4 || e[0]>>4 != 2 {
		return false
	}
	if e[2] == 0 && e[3] == 0 {
		return true
	}
	return Checksum(e) == 0
}

func parseQuote(b []byte) (Quote, error) {
	var q Quote
	if len(b) < 1 {
		return q, ErrNotQuoted
	}
	var rest []byte
	switch b[0] >> 4 {
	case 4:
		hl := int(b[0]&0x0f) * 4
		if hl < ipv4HeaderMinLen || len(b) < hl {
			return q, ErrNotQuoted
		}
		q.IPID = binary.BigEndian.Uint16(b[4:])
		q.TTL = b[8]
		q.Proto = b[9]
		q.Src = netip.AddrFrom4([4]byte(b[12:16]))
		q.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		rest = b[hl:]
	case 6:
		if len(b) < ipv6HeaderLen {
			return q, ErrNotQuoted
		}
		q.Proto = b[6]
		q.TTL = b[7]
		q.Src = netip.AddrFrom16([16]byte(b[8:24]))
		q.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		rest = b[ipv6HeaderLen:]
	default:
		return q, ErrNotQuoted
	}
	if len(rest) > 8 {
		q.Transport, q.Payload = rest[:8], rest[8:]
	} else {
		q.Transport = rest
	}
	return q, nil
}

// MaxMPLSLabels bounds the labels taken from one reply.
const MaxMPLSLabels = 16

// AppendMPLS appends the RFC 4950 MPLS label stack entries found in the
// extension structure ext (as returned in [Message.Ext]) to dst, at most
// [MaxMPLSLabels]. Malformed objects end the walk; what was read stays.
func AppendMPLS(dst []measure.MPLSLabel, ext []byte) []measure.MPLSLabel {
	if len(ext) < 4 {
		return dst
	}
	objs := ext[4:]
	added := 0
	for len(objs) >= 4 {
		n := int(binary.BigEndian.Uint16(objs))
		if n < 4 || n > len(objs) {
			return dst
		}
		class, ctype := objs[2], objs[3]
		if class == 1 && ctype == 1 {
			for e := objs[4:n]; len(e) >= 4 && added < MaxMPLSLabels; e = e[4:] {
				v := binary.BigEndian.Uint32(e)
				dst = append(dst, measure.MPLSLabel{
					Label: v >> 12,
					TC:    uint8(v>>9) & 7,
					S:     v>>8&1 == 1,
					TTL:   uint8(v),
				})
				added++
			}
		}
		objs = objs[n:]
	}
	return dst
}
