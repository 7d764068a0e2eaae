package census

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// Magic starts every census echo payload. It is followed by the round id,
// the transmit time, the site tag, the sender's MAC and the
// human-readable [PayloadText], so that an operator who captures the
// packet can tell what it is. (ACENSUS1 payloads carried one MAC every
// site could make; they are not accepted any more.)
const Magic = "ACENSUS2"

// PayloadText is the clear string in every census probe; operators add a
// contact note after it (see Payload).
const PayloadText = " anycatch anycast catchment census (Verfploeter); harmless single probe; opt out: see the contact below or docs/census.md;"

// headerLen is magic, round, transmit time, site tag and MAC.
const headerLen = len(Magic) + 8 + 8 + 8 + macLen

const macLen = 8

// MaxNoteLen bounds the operator's note appended to the payload.
const MaxNoteLen = 120

// SecretLen is the length of a round's MAC key (and of its site key).
const SecretLen = 16

// Probe is what a census echo request carries.
type Probe struct {
	Round int64
	Sent  time.Time
}

// Payload returns the echo payload for a probe to dst: header, site tag
// (keyed with siteKey, [SiteKey] of secret), the sender MAC (keyed with the
// round's secret), both over round, transmit time and dst, and the clear
// text with note appended.
func Payload(secret, siteKey []byte, p Probe, dst netip.Addr, note string) []byte {
	if len(note) > MaxNoteLen {
		note = note[:MaxNoteLen]
	}
	t := Tag{Kind: KindICMP, Round: p.Round, Sent: time.Unix(0, p.Sent.UnixNano()), Dst: dst}
	b := make([]byte, 0, headerLen+len(PayloadText)+1+len(note))
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Round))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Sent.UnixNano()))
	b = append(b, SiteTag(siteKey, t)...)
	b = append(b, MAC(secret, t)...)
	b = append(b, PayloadText...)
	if note != "" {
		b = append(b, ' ')
		b = append(b, note...)
	}
	return b
}

// Errors of ParseHeader and Verify.
var (
	ErrNotCensus = errors.New("not a census payload")
	ErrBadMAC    = errors.New("census payload site tag does not match")
)

// ParseHeader reads the round and transmit time of a payload without
// checking its tags; use it to find the round's keys, then [Verify].
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

// Verify checks the site tag of payload b for a reply from from (the
// address the echo request went to) with the round's site key, and
// returns the probe and the sender MAC the site reports to the collector
// (which checks it with [CheckMAC]; a site cannot).
func Verify(siteKey, b []byte, from netip.Addr) (Probe, []byte, error) {
	p, err := ParseHeader(b)
	if err != nil {
		return p, nil, err
	}
	off := len(Magic) + 16
	t := Tag{Kind: KindICMP, Round: p.Round, Sent: p.Sent, Dst: from}
	if !hmac.Equal(b[off:off+8], SiteTag(siteKey, t)) {
		return Probe{}, nil, ErrBadMAC
	}
	return p, append([]byte(nil), b[off+8:headerLen]...), nil
}
