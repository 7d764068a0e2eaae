package icmpwire

import (
	"encoding/binary"
	"net/netip"

	"github.com/anycatch/anycatch/measure"
)

// The builders below forge what routers send back. The engines never send
// these; tests and fake networks use them to produce replies byte for byte
// as RFC 792/4443/4884/4950 lay them out.

// AppendIPHeader appends a minimal IPv4 (20 bytes) or IPv6 (40 bytes)
// header for a packet of payloadLen bytes.
func AppendIPHeader(b []byte, src, dst netip.Addr, proto, ttl uint8, ipid uint16, payloadLen int) []byte {
	if src.Is4() {
		h := make([]byte, 20)
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(20+payloadLen))
		binary.BigEndian.PutUint16(h[4:], ipid)
		h[8], h[9] = ttl, proto
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		binary.BigEndian.PutUint16(h[10:], Checksum(h))
		return append(b, h...)
	}
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(payloadLen))
	h[6], h[7] = proto, ttl
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(b, h...)
}

// AppendUDPHeader appends a UDP header with the given checksum.
func AppendUDPHeader(b []byte, sport, dport uint16, payloadLen int, csum uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(
		binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport), uint16(8+payloadLen)), csum)
}

// AppendMPLSExtension appends an RFC 4884 extension structure holding one
// RFC 4950 MPLS label stack object, with a correct checksum.
func AppendMPLSExtension(b []byte, labels []measure.MPLSLabel) []byte {
	start := len(b)
	b = append(b, 0x20, 0, 0, 0) // version 2, checksum later
	b = binary.BigEndian.AppendUint16(b, uint16(4+4*len(labels)))
	b = append(b, 1, 1) // class MPLS label stack, c-type incoming stack
	for _, l := range labels {
		v := l.Label<<12 | uint32(l.TC&7)<<9 | uint32(l.TTL)
		if l.S {
			v |= 1 << 8
		}
		b = binary.BigEndian.AppendUint32(b, v)
	}
	binary.BigEndian.PutUint16(b[start+2:], Checksum(b[start:]))
	return b
}

// AppendError appends an ICMP(v6) error message quoting quote. With ext
// set, the quote is zero-padded to 128 bytes and its length is given in
// the RFC 4884 length field (compat false) or left zero as pre-RFC 4884
// MPLS routers do (compat true).
func AppendError(b []byte, v6 bool, typ, code uint8, quote, ext []byte, compat bool) []byte {
	start := len(b)
	b = append(b, typ, code, 0, 0, 0, 0, 0, 0)
	q := quote
	if ext != nil {
		q = make([]byte, max(128, (len(quote)+7)/8*8))
		copy(q, quote)
		if !compat {
			if v6 {
				b[start+4] = byte(len(q) / 8)
			} else {
				b[start+5] = byte(len(q) / 4)
			}
		}
	}
	b = append(b, q...)
	b = append(b, ext...)
	if !v6 {
		binary.BigEndian.PutUint16(b[start+2:], Checksum(b[start:]))
	}
	return b
}
