package routing

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/bmp"
)

var (
	peer4 = netip.MustParseAddr("198.18.1.2")
	watch = Watch{netip.MustParsePrefix("198.18.100.0/24"), netip.MustParsePrefix("2001:db8:100::/48")}
	stamp = time.Date(2026, 12, 7, 23, 0, 0, 500_000_000, time.UTC)
)

func nlri(t testing.TB, s string) bgp.PathNLRI {
	p, err := bgp.NewIPAddrPrefix(netip.MustParsePrefix(s))
	if err != nil {
		t.Fatal(err)
	}
	return bgp.PathNLRI{NLRI: p}
}

func rm(t testing.TB, u *bgp.BGPMessage) []byte {
	h := bmp.NewBMPPeerHeader(bmp.BMP_PEER_TYPE_GLOBAL, bmp.BMP_PEER_FLAG_POST_POLICY, 0, peer4, 64500,
		netip.MustParseAddr("198.18.1.2"), float64(stamp.UnixNano())/1e9)
	b, err := bmp.NewBMPRouteMonitoring(*h, u).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func attrs(t testing.TB, extra ...bgp.PathAttributeInterface) []bgp.PathAttributeInterface {
	nh, err := bgp.NewPathAttributeNextHop(peer4)
	if err != nil {
		t.Fatal(err)
	}
	return append([]bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64500, 64501, 65010})}),
		nh,
		bgp.NewPathAttributeCommunities([]uint32{64500<<16 | 100}),
	}, extra...)
}

// stream is a realistic session: Initiation, IPv4 announce (one watched,
// one not), IPv6 announce via MP_REACH, IPv4 withdraw, IPv6 withdraw via
// MP_UNREACH, Peer Down.
func stream(t testing.TB) []byte {
	var buf bytes.Buffer
	init, err := bmp.NewBMPInitiation([]bmp.BMPInfoTLVInterface{bmp.NewBMPInfoTLVString(bmp.BMP_INIT_TLV_TYPE_SYS_NAME, "site-a")}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(init)
	buf.Write(rm(t, bgp.NewBGPUpdateMessage(nil, attrs(t), []bgp.PathNLRI{nlri(t, "198.18.100.0/24"), nlri(t, "203.0.113.0/24")})))
	reach, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{nlri(t, "2001:db8:100::/48")}, netip.MustParseAddr("2001:db8::1"))
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(rm(t, bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64500, 65010})}),
		bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{bgp.NewLargeCommunity(65010, 1, 2)}),
		reach,
	}, nil)))
	buf.Write(rm(t, bgp.NewBGPUpdateMessage([]bgp.PathNLRI{nlri(t, "198.18.100.0/24")}, nil, nil)))
	unreach, err := bgp.NewPathAttributeMpUnreachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{nlri(t, "2001:db8:100::/48")})
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(rm(t, bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{unreach}, nil)))
	h := bmp.NewBMPPeerHeader(bmp.BMP_PEER_TYPE_GLOBAL, 0, 0, peer4, 64500, peer4, float64(stamp.Unix()))
	down, err := bmp.NewBMPPeerDownNotification(*h, bmp.BMP_PEER_DOWN_REASON_LOCAL_NO_NOTIFICATION, nil, []byte{0, 2}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(down)
	return buf.Bytes()
}

func readAll(t testing.TB, b []byte) ([]Event, error) {
	r := NewReader(bytes.NewReader(b), 0)
	var all []Event
	for {
		msg, err := r.Next()
		if err == io.EOF {
			return all, nil
		}
		if err != nil {
			return all, err
		}
		evs, err := Decode(msg, watch)
		if err != nil {
			return all, err
		}
		all = append(all, evs...)
	}
}

func TestBMPStreamEvents(t *testing.T) {
	evs, err := readAll(t, stream(t))
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		kind   Kind
		prefix string
		path   []uint32
		comms  []string
	}
	want := []got{
		{Announced, "198.18.100.0/24", []uint32{64500, 64501, 65010}, []string{"64500:100"}},
		{Announced, "2001:db8:100::/48", []uint32{64500, 65010}, []string{"65010:1:2"}},
		{Withdrawn, "198.18.100.0/24", nil, nil},
		{Withdrawn, "2001:db8:100::/48", nil, nil},
		{PeerDown, "invalid Prefix", nil, nil},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, e := range evs {
		w := want[i]
		if e.Kind != w.kind || e.Prefix.String() != w.prefix || !slices.Equal(e.ASPath, w.path) || !slices.Equal(e.Communities, w.comms) {
			t.Errorf("event %d = %v %v path %v comms %v, want %+v", i, e.Kind, e.Prefix, e.ASPath, e.Communities, w)
		}
		if e.Peer != peer4 || e.PeerAS != 64500 {
			t.Errorf("event %d peer %v AS %d", i, e.Peer, e.PeerAS)
		}
		if i < 4 {
			if !e.PostPolicy || e.Time.Sub(stamp).Abs() > time.Millisecond {
				t.Errorf("event %d post-policy %v time %v, want true %v", i, e.PostPolicy, e.Time, stamp)
			}
		}
	}
}

func TestBMPStreamErrors(t *testing.T) {
	good := stream(t)
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"truncated mid-message": {good[:len(good)-3], io.ErrUnexpectedEOF},
		"truncated header":      {good[:3], io.ErrUnexpectedEOF},
		"wrong version":         {append([]byte{1, 0, 0, 0, 6, 4}, good...), ErrGarbage},
		"http garbage":          {[]byte("GET / HTTP/1.1\r\n\r\n"), ErrGarbage},
		"huge length":           {[]byte{3, 0xff, 0xff, 0xff, 0xff, 0}, ErrGarbage},
		"length below header":   {[]byte{3, 0, 0, 0, 2, 0}, ErrGarbage},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := readAll(t, c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// A well-framed message with a broken body is an error from Decode.
	bad := rm(t, bgp.NewBGPUpdateMessage(nil, attrs(t), []bgp.PathNLRI{nlri(t, "198.18.100.0/24")}))
	bad = bad[:len(bad)-4]
	bad[1], bad[2], bad[3], bad[4] = 0, 0, byte(len(bad)>>8), byte(len(bad))
	if _, err := readAll(t, bad); err == nil || errors.Is(err, ErrGarbage) {
		t.Fatalf("broken body: err = %v, want a decode error", err)
	}
}

func FuzzBMPStream(f *testing.F) {
	f.Add(stream(f))
	f.Add([]byte{3, 0, 0, 0, 6, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), 4096)
		for i := 0; ; i++ {
			if i > len(b) {
				t.Fatal("reader did not make progress")
			}
			msg, err := r.Next()
			if err != nil {
				return
			}
			if len(msg) > 4096 {
				t.Fatalf("message of %d bytes over the bound", len(msg))
			}
			evs, err := Decode(msg, watch)
			for _, e := range evs {
				if e.Kind != PeerDown && !watch.match(e.Prefix) {
					t.Fatalf("event for unwatched prefix %v", e.Prefix)
				}
			}
			_ = err
		}
	})
}
