package census

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Kind is what a census round sends to each hitlist address.
type Kind string

// Census kinds. Every kind carries two keyed tags in the fields a reply
// echoes: a site tag every site can check (so a site drops junk before
// spooling it) and a MAC only the round's sender can make and the
// collector checks (so a receiving site cannot report an address the
// round never probed).
const (
	// KindICMP is one ICMP echo request; both tags travel in the payload
	// (8 bytes each) with the transmit time.
	KindICMP Kind = "icmp"
	// KindTCP is one TCP SYN to a port; a SYN/ACK or a RST counts. The
	// site tag is the source port (15 bits), the MAC the initial sequence
	// number (32 bits, echoed as ack-1).
	KindTCP Kind = "tcp"
	// KindDNS is one DNS query over UDP to a port (a CHAOS identity query
	// or a fixed name); any DNS response counts. The site tag is the
	// source port (15 bits), the MAC the DNS message id (16 bits).
	KindDNS Kind = "dns"
)

// Kinds lists the census kinds.
var Kinds = []Kind{KindICMP, KindTCP, KindDNS}

// Valid reports whether k is a census kind.
func (k Kind) Valid() bool { return k == KindICMP || k == KindTCP || k == KindDNS }

// MACLen is the length in bytes of the sender MAC a reply of kind k
// carries (and the agent uploads): 8 for ICMP, 4 for TCP, 2 for DNS.
func (k Kind) MACLen() int {
	switch k {
	case KindTCP:
		return 4
	case KindDNS:
		return 2
	default:
		return macLen
	}
}

// DefaultPort is the port a TCP or DNS round probes when it names none.
func (k Kind) DefaultPort() int {
	switch k {
	case KindTCP:
		return 80
	case KindDNS:
		return 53
	}
	return 0
}

// Tag names what one probe's tags are computed over. Sent is part of it
// for ICMP only (the echo payload returns it); TCP and DNS replies do not
// carry the transmit time, so their tags cover round, address and port.
type Tag struct {
	Kind  Kind
	Round int64
	Sent  time.Time  // ICMP only
	Dst   netip.Addr // the probed address (the reply's source)
	Port  int        // TCP and DNS: the probed port
}

// SiteKey derives from a round's secret the key every site of the round
// gets: it checks site tags but cannot make the sender's MAC.
func SiteKey(secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("anycatch census site key v1"))
	return h.Sum(nil)[:SecretLen]
}

func (t Tag) input() []byte {
	var b [8 + 8 + 8 + 16 + 2]byte
	copy(b[0:8], t.Kind)
	binary.BigEndian.PutUint64(b[8:], uint64(t.Round))
	if t.Kind == KindICMP {
		binary.BigEndian.PutUint64(b[16:], uint64(t.Sent.UnixNano()))
	}
	a := t.Dst.Unmap().As16()
	copy(b[24:], a[:])
	binary.BigEndian.PutUint16(b[40:], uint16(t.Port))
	return b[:]
}

func tagMAC(key []byte, t Tag) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(t.input())
	return h.Sum(nil)
}

// SiteTag is the 8-byte site tag of a probe (ICMP payloads carry it
// whole; TCP and DNS use 15 bits of it as the source port, see
// [SourcePort]).
func SiteTag(siteKey []byte, t Tag) []byte { return tagMAC(siteKey, t)[:8] }

// MAC is the sender's MAC of a probe, t.Kind.MACLen() bytes.
func MAC(secret []byte, t Tag) []byte { return tagMAC(secret, t)[:t.Kind.MACLen()] }

// SourcePort is the source port of a TCP or DNS probe: 32768 plus 15
// bits of its site tag, so it stays in the usual ephemeral range.
func SourcePort(siteKey []byte, t Tag) uint16 {
	s := SiteTag(siteKey, t)
	return 0x8000 | binary.BigEndian.Uint16(s)&0x7fff
}

// ErrMAC is returned by [CheckMAC] for a reply the round's sender did not
// probe (a forged, corrupted or made-up reply).
var ErrMAC = errors.New("mac does not match a probe of the round")

// CheckMAC verifies the sender MAC a site reported for a reply: the
// collector holds the round's secret, sites (other than the sender) do
// not, so a reply is only stored when the round really probed that
// address.
func CheckMAC(secret []byte, t Tag, mac []byte) error {
	if !t.Kind.Valid() {
		return fmt.Errorf("census kind %q unknown", t.Kind)
	}
	if len(mac) != t.Kind.MACLen() {
		return fmt.Errorf("%w: want %d bytes, got %d", ErrMAC, t.Kind.MACLen(), len(mac))
	}
	if !hmac.Equal(mac, MAC(secret, t)) {
		return ErrMAC
	}
	return nil
}
