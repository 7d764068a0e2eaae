package census

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// Magic starts every census echo payload. It is followed by the round id,
// the transmit time, a MAC and the human-readable [PayloadText], so that
// an operator who captures the packet can tell what it is.
const Magic = "ACENSUS1"

// PayloadText is the clear string in every census probe; operators add a
// contact note after it (see Payload).
const PayloadText = " anycatch anycast catchment census (Verfploeter); harmless single ICMP echo; opt out: see the contact below or docs/census.md;"

// headerLen is magic, round, transmit time and MAC.
const headerLen = len(Magic) + 8 + 8 + macLen

const macLen = 8

// MaxNoteLen bounds the operator's note appended to the payload.
const MaxNoteLen = 120

// SecretLen is the length of a round's MAC key.
const SecretLen = 16

// Probe is what a census echo request carries.
type Probe struct {
	Round int64
	Sent  time.Time
}

// Payload returns the echo payload for a probe to dst: header, MAC (over
// round, transmit time and dst, keyed with the round's secret) and the
// clear text with note appended.
func Payload(secret []byte, p Probe, dst netip.Addr, note string) []byte {
	if len(note) > MaxNoteLen {
		note = note[:MaxNoteLen]
	}
	b := make([]byte, 0, headerLen+len(PayloadText)+1+len(note))
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Round))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Sent.UnixNano()))
	b = append(b, mac(secret, p.Round, p.Sent.UnixNano(), dst)...)
	b = append(b, PayloadText...)
	if note != "" {
		b = append(b, ' ')
		b = append(b, note...)
	}
	return b
}

func mac(secret []byte, round, sent int64, dst netip.Addr) []byte {
	h := hmac.New(sha256.New, secret)
	var b [16 + 16]byte
	binary.BigEndian.PutUint64(b[0:], uint64(round))
	binary.BigEndian.PutUint64(b[8:], uint64(sent))
	a := dst.Unmap().As16()
	copy(b[16:], a[:])
	h.Write(b[:])
	return h.Sum(nil)[:macLen]
}

// Errors of ParsePayload.
var (
	ErrNotCensus = errors.New("not a census payload")
	ErrBadMAC    = errors.New("census payload MAC does not match")
)

// ParseHeader reads the round and transmit time of a payload without
// checking its MAC; use it to find the round's secret, then [Verify].
func ParseHeader(b []byte) (Probe, error) {
	if len(b) < headerLen || string(b[:len(Magic)]) != Magic {
		return Probe{}, ErrNotCensus
	}
	round := int64(binary.BigEndian.Uint64(b[len(Magic):]))
	sent := int64(binary.BigEndian.Uint64(b[len(Magic)+8:]))
	if round <= 0 {
		return Probe{}, ErrNotCensus
	}
	return Probe{Round: round, Sent: time.Unix(0, sent)}, nil
}

// Verify checks that payload b was made with secret for a probe to from
// (the address the reply came from, which the echo request went to).
func Verify(secret, b []byte, from netip.Addr) (Probe, error) {
	p, err := ParseHeader(b)
	if err != nil {
		return p, err
	}
	got := b[len(Magic)+16 : headerLen]
	if !hmac.Equal(got, mac(secret, p.Round, p.Sent.UnixNano(), from)) {
		return Probe{}, ErrBadMAC
	}
	return p, nil
}
