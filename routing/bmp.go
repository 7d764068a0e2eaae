package routing

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

// Kind is what happened to a prefix (or a peer).
type Kind string

const (
	Announced Kind = "announced"
	Withdrawn Kind = "withdrawn"
	// PeerDown: the monitored BGP session went down; every route it
	// carried is gone (Prefix is not set).
	PeerDown Kind = "peer_down"
)

// Event is one routing event for a watched prefix, as the BMP speaker
// reported it.
type Event struct {
	Kind   Kind
	Prefix netip.Prefix // unset for PeerDown
	// Time is the peer header's timestamp (when the speaker saw the
	// route); zero if the speaker sent none.
	Time      time.Time
	Peer      netip.Addr
	PeerAS    uint32
	PeerBGPID netip.Addr
	// PostPolicy and AdjRIBOut are the peer header's L and O flags.
	PostPolicy bool
	AdjRIBOut  bool
	// ASPath is the AS_PATH flattened in order (AS_SET members
	// included); Communities are "asn:value", large ones "a:b:c".
	// Both are empty for withdrawals.
	ASPath      []uint32
	Communities []string
}

// DefaultMaxMessage bounds one BMP message. A Route Monitoring message
// carries one BGP UPDATE (≤ 65535 bytes with RFC 8654) plus headers.
const DefaultMaxMessage = 1 << 17

// ErrGarbage marks a stream that is not BMP (bad version or length); the
// stream cannot be resynchronised and should be closed.
var ErrGarbage = errors.New("routing: not a BMP stream")

// Reader yields whole BMP messages from a byte stream.
type Reader struct {
	r   *bufio.Reader
	max int
}

// NewReader frames r; max ≤ 0 means DefaultMaxMessage.
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxMessage
	}
	return &Reader{r: bufio.NewReader(r), max: max}
}

// Next returns the next whole message (header included). io.EOF means the
// stream ended cleanly between messages; io.ErrUnexpectedEOF means it
// ended inside one; ErrGarbage wraps a bad header.
func (r *Reader) Next() ([]byte, error) {
	var hdr [bmp.BMP_HEADER_SIZE]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != bmp.BMP_VERSION {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrGarbage, hdr[0], bmp.BMP_VERSION)
	}
	n := binary.BigEndian.Uint32(hdr[1:5])
	if n < bmp.BMP_HEADER_SIZE || uint64(n) > uint64(r.max) {
		return nil, fmt.Errorf("%w: message length %d outside [%d, %d]", ErrGarbage, n, bmp.BMP_HEADER_SIZE, r.max)
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r.r, msg[bmp.BMP_HEADER_SIZE:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("routing: reading %d-byte BMP message: %w", n, err)
	}
	return msg, nil
}

// Watch is the set of prefixes events are reported for: a route is
// reported if it overlaps any of them (the prefix itself, a more
// specific, or a covering aggregate).
type Watch []netip.Prefix

func (w Watch) match(p netip.Prefix) bool {
	for _, q := range w {
		if q.Overlaps(p) {
			return true
		}
	}
	return false
}

// Decode turns one whole BMP message into events for the watched
// prefixes. Messages that carry no routes (Initiation, Statistics, Peer
// Up, ...) give no events and no error. It never panics: a panic inside
// the parser on hostile input is returned as an error.
func Decode(msg []byte, w Watch) (evs []Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			evs, err = nil, fmt.Errorf("routing: malformed BMP message (parser panic: %v)", r)
		}
	}()
	m, err := bmp.ParseBMPMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("routing: bad BMP message: %w", err)
	}
	switch body := m.Body.(type) {
	case *bmp.BMPRouteMonitoring:
		if body.BGPUpdate == nil {
			return nil, errors.New("routing: route monitoring without a BGP message")
		}
		u, ok := body.BGPUpdate.Body.(*bgp.BGPUpdate)
		if !ok {
			return nil, fmt.Errorf("routing: route monitoring carries BGP message type %d, not UPDATE", body.BGPUpdate.Header.Type)
		}
		return updateEvents(peerOf(m.PeerHeader), u, w), nil
	case *bmp.BMPPeerDownNotification:
		e := peerOf(m.PeerHeader)
		e.Kind = PeerDown
		return []Event{e}, nil
	}
	return nil, nil
}

func peerOf(h bmp.BMPPeerHeader) Event {
	e := Event{
		Peer:       h.PeerAddress,
		PeerAS:     h.PeerAS,
		PeerBGPID:  h.PeerBGPID,
		PostPolicy: h.IsPostPolicy(),
		AdjRIBOut:  h.IsAdjRIBOut(),
	}
	if ts := h.Timestamp; ts > 0 && ts < math.MaxInt64/1e9 {
		sec, frac := math.Modf(ts)
		e.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	return e
}

func updateEvents(peer Event, u *bgp.BGPUpdate, w Watch) []Event {
	var path []uint32
	var comms []string
	var reach, unreach []bgp.PathNLRI
	for _, a := range u.PathAttributes {
		switch a := a.(type) {
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				path = append(path, seg.GetAS()...)
			}
		case *bgp.PathAttributeCommunities:
			for _, c := range a.Value {
				comms = append(comms, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range a.Values {
				comms = append(comms, fmt.Sprintf("%d:%d:%d", c.ASN, c.LocalData1, c.LocalData2))
			}
		case *bgp.PathAttributeMpReachNLRI:
			reach = append(reach, a.Value...)
		case *bgp.PathAttributeMpUnreachNLRI:
			unreach = append(unreach, a.Value...)
		}
	}
	var evs []Event
	add := func(k Kind, nlris []bgp.PathNLRI) {
		for _, n := range nlris {
			p, ok := prefixOf(n.NLRI)
			if !ok || !w.match(p) {
				continue
			}
			e := peer
			e.Kind, e.Prefix = k, p
			if k == Announced {
				e.ASPath, e.Communities = path, comms
			}
			evs = append(evs, e)
		}
	}
	add(Withdrawn, u.WithdrawnRoutes)
	add(Withdrawn, unreach)
	add(Announced, u.NLRI)
	add(Announced, reach)
	return evs
}

// prefixOf keeps unicast IP prefixes (IPv4 and IPv6); other families
// (VPN, EVPN, flowspec, ...) are not the target's anycast prefixes.
func prefixOf(n bgp.NLRI) (netip.Prefix, bool) {
	if p, ok := n.(*bgp.IPAddrPrefix); ok && p.Prefix.IsValid() {
		return p.Prefix, true
	}
	return netip.Prefix{}, false
}
