// Package icmpwire is the probe's ICMP layer shared by the ping and trace
// engines: building echo and UDP probes (with Paris-style constant
// checksums), parsing replies and the packets they quote, RFC 4884/4950
// extensions, and the Linux sockets that carry them (raw, ICMP datagram
// and IP_RECVERR error queues).
//
// Every parser here takes bytes from the network: it never panics, never
// allocates per packet on the hot path, and reports anything it cannot
// make sense of as an error the caller drops.
package icmpwire

import (
	"encoding/binary"
	"net/netip"
)

// ICMP and ICMPv6 message types the engines use.
const (
	V4EchoReply      = 0
	V4Unreachable    = 3
	V4EchoRequest    = 8
	V4TimeExceeded   = 11
	V4ParamProblem   = 12
	V6Unreachable    = 1
	V6PacketTooBig   = 2
	V6TimeExceeded   = 3
	V6ParamProblem   = 4
	V6EchoRequest    = 128
	V6EchoReply      = 129
	ProtoICMP        = 1
	ProtoUDP         = 17
	ProtoICMPv6      = 58
	v4PortUnreach    = 3
	v6PortUnreach    = 4
	echoHeaderLen    = 8
	udpHeaderLen     = 8
	ipv4HeaderMinLen = 20
	ipv6HeaderLen    = 40
)

// Sum adds b to the running 32-bit ones'-complement sum s (RFC 1071). An
// odd trailing byte is padded with zero, so only the last chunk of a
// message may have odd length.
func Sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// Fold reduces a running sum to 16 bits with end-around carry.
func Fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// Checksum is the Internet checksum of b.
func Checksum(b []byte) uint16 { return ^Fold(Sum(0, b)) }

// add is ones'-complement 16-bit addition.
func add(a, b uint16) uint16 { return Fold(uint32(a) + uint32(b)) }

// pseudoSum is the ones'-complement sum of the TCP/UDP/ICMPv6 pseudo-header.
func pseudoSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	s := uint32(0)
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = Sum(Sum(s, a[:]), b[:])
	} else {
		a, b := src.As16(), dst.As16()
		s = Sum(Sum(s, a[:]), b[:])
	}
	return s + uint32(proto) + uint32(length>>16) + uint32(length&0xffff)
}

// EchoProbe describes one ICMP echo request.
type EchoProbe struct {
	V6    bool
	ID    uint16
	Seq   uint16
	Nonce []byte // copied to the start of the payload (after Paris's word); may be empty
	Size  int    // payload bytes; the payload is zero-padded or the nonce cut to fit
	// Paris, when set, makes the first two payload bytes compensate the
	// sequence number so that the ICMP checksum is the same for every
	// sequence number of a flow (load balancers hash it). FlowKey picks
	// which constant; it is the flow identifier of the trace.
	Paris   bool
	FlowKey uint16
}

// AppendEcho appends the echo request p to b. For ICMPv4 the checksum is
// filled in; for ICMPv6 it is left zero because the kernel computes it over
// the pseudo-header (the body sum, and so the checksum, is still constant
// under Paris).
func AppendEcho(b []byte, p EchoProbe) []byte {
	start := len(b)
	typ := byte(V4EchoRequest)
	if p.V6 {
		typ = V6EchoRequest
	}
	b = append(b, typ, 0, 0, 0, byte(p.ID>>8), byte(p.ID), byte(p.Seq>>8), byte(p.Seq))
	pay := len(b)
	for i := 0; i < p.Size; i++ {
		b = append(b, 0)
	}
	payload := b[pay:]
	nonceAt := 0
	if p.Paris && len(payload) >= 2 {
		nonceAt = 2
	}
	copy(payload[nonceAt:], p.Nonce)
	if p.Paris && len(payload) >= 2 {
		// seq + w == FlowKey in ones'-complement, whatever seq is.
		w := add(p.FlowKey, ^p.Seq)
		binary.BigEndian.PutUint16(payload, w)
	}
	if !p.V6 {
		binary.BigEndian.PutUint16(b[start+2:], Checksum(b[start:]))
	}
	return b
}

// EchoNonce returns where the nonce sits in an echo payload built with the
// given Paris setting, so matchers can compare it.
func EchoNonce(payload []byte, paris bool) []byte {
	if paris {
		if len(payload) < 2 {
			return nil
		}
		return payload[2:]
	}
	return payload
}

// UDPChecksumPayload fills payload[0:2] so that the UDP datagram from
// src:sport to dst:dport carrying payload gets the checksum want. Paris
// UDP traces keep ports (the flow) constant and tell probes apart by the
// checksum, which routers quote in the first 8 bytes. want must not be 0
// or 0xffff (0 means "no checksum" on the wire). payload must hold at
// least 2 bytes.
func UDPChecksumPayload(payload []byte, src, dst netip.Addr, sport, dport uint16, want uint16) {
	payload[0], payload[1] = 0, 0
	n := udpHeaderLen + len(payload)
	s := pseudoSum(src, dst, ProtoUDP, n)
	s += uint32(sport) + uint32(dport) + uint32(n)
	s = Sum(s, payload)
	// checksum = ^(S0 + w) == want  =>  w = ^want - S0.
	w := add(^want, ^Fold(s))
	binary.BigEndian.PutUint16(payload, w)
}

// UDPChecksum computes the checksum the kernel puts on a UDP datagram
// (for tests and for reporting).
func UDPChecksum(payload []byte, src, dst netip.Addr, sport, dport uint16) uint16 {
	n := udpHeaderLen + len(payload)
	s := pseudoSum(src, dst, ProtoUDP, n)
	s += uint32(sport) + uint32(dport) + uint32(n)
	c := ^Fold(Sum(s, payload))
	if c == 0 {
		c = 0xffff
	}
	return c
}

// ICMPv6Checksum computes the checksum the kernel puts on an ICMPv6
// message msg (with a zero checksum field) from src to dst.
func ICMPv6Checksum(msg []byte, src, dst netip.Addr) uint16 {
	return ^Fold(Sum(pseudoSum(src, dst, ProtoICMPv6, len(msg)), msg))
}
