// Package ntp is the probe's NTP engine: one NTPv4 client query (mode 3)
// to an anycast address, and a strict parser for the server's reply. The
// reply's reference id often names the serving instance, which identity
// rules (ntp_refid) map to a site.
//
// The engine is unprivileged (an ordinary UDP socket), sends exactly one
// packet, and honours kiss-o'-death: a RATE, DENY or RSTR reply is
// recorded as such and nothing is retried.
package ntp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// PacketSize is the size of an NTP header without extensions or MAC.
const PacketSize = 48

// Options configures [Query]. The zero value is ready to use.
type Options struct {
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Dial opens the UDP socket. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Packet is a decoded NTP header.
type Packet struct {
	Leap, Version, Mode int
	Stratum             int
	Poll, Precision     int8
	RootDelay, RootDisp time.Duration
	RefID               [4]byte
	Ref, Origin         uint64 // NTP timestamps (32.32 fixed point since 1900)
	Receive, Transmit   uint64
}

// ParsePacket decodes an NTP reply. It accepts any length of at least
// PacketSize (extension fields and MACs are ignored) and rejects what a
// server reply cannot be: short packets, version 0 or above 4, a mode other
// than server (4) or broadcast (5).
func ParsePacket(b []byte) (Packet, error) {
	var p Packet
	if len(b) < PacketSize {
		return p, fmt.Errorf("packet of %d bytes is shorter than %d", len(b), PacketSize)
	}
	p.Leap = int(b[0] >> 6)
	p.Version = int(b[0] >> 3 & 7)
	p.Mode = int(b[0] & 7)
	if p.Version < 1 || p.Version > 4 {
		return p, fmt.Errorf("version %d is not 1..4", p.Version)
	}
	if p.Mode != 4 && p.Mode != 5 {
		return p, fmt.Errorf("mode %d is not a server reply", p.Mode)
	}
	p.Stratum = int(b[1])
	p.Poll, p.Precision = int8(b[2]), int8(b[3])
	p.RootDelay = short(binary.BigEndian.Uint32(b[4:]))
	p.RootDisp = short(binary.BigEndian.Uint32(b[8:]))
	copy(p.RefID[:], b[12:16])
	p.Ref = binary.BigEndian.Uint64(b[16:])
	p.Origin = binary.BigEndian.Uint64(b[24:])
	p.Receive = binary.BigEndian.Uint64(b[32:])
	p.Transmit = binary.BigEndian.Uint64(b[40:])
	return p, nil
}

// short converts an NTP short format (16.16 seconds) to a duration.
func short(v uint32) time.Duration {
	return time.Duration(uint64(v) * uint64(time.Second) >> 16)
}

// Kiss returns the kiss code of a kiss-o'-death packet (stratum 0), or "".
func (p *Packet) Kiss() string {
	if p.Stratum != 0 {
		return ""
	}
	return asciiRefID(p.RefID)
}

// RefIDString is the reference id as text: the ASCII code for stratum 0
// and 1 ("GPS", "PPS", a kiss code), dotted quad for stratum 2 and above
// (an IPv4 upstream, or the first bytes of an IPv6 upstream's hash).
func (p *Packet) RefIDString() string {
	if p.Stratum <= 1 {
		return asciiRefID(p.RefID)
	}
	return netip.AddrFrom4(p.RefID).String()
}

// asciiRefID is the NUL-padded ASCII refid; other bytes are escaped as
// \xNN so the text is printable and valid UTF-8.
func asciiRefID(id [4]byte) string {
	var sb strings.Builder
	for _, c := range id {
		switch {
		case c == 0:
			continue
		case c >= 0x20 && c < 0x7f && c != '\\':
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	return sb.String()
}

// ToNTP converts t to an NTP timestamp (era 0 or 1 folded into 64 bits).
func ToNTP(t time.Time) uint64 {
	d := t.Sub(ntpEpoch)
	sec := uint64(t.Unix() + 2208988800)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// ntpEpoch is 1900-01-01, where NTP time starts.
var ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// toTime converts an NTP timestamp to time (era 0, valid until 2036;
// later values wrap into era 1, which is when era 0 would have ended).
func toTime(ts uint64) time.Time {
	sec := ts >> 32
	frac := ts & 0xffffffff
	t := ntpEpoch.Add(time.Duration(sec) * time.Second).Add(time.Duration(frac * uint64(time.Second) >> 32))
	if sec < 0x80000000 { // era 1 starts 2036-02-07; RFC 5905 6
		t = t.Add(time.Duration(1<<32) * time.Second)
	}
	return t
}

// Query sends one NTPv4 client request to server and reads the reply
// until ctx's deadline or the spec's timeout. A timeout or a malformed
// reply is a result (Error set); the error return means the socket could
// not be opened at all.
//
// The transmit timestamp sent is random (RFC 9109): the server echoes it as
// the origin timestamp, which is how a spoofed or stale reply is told
// apart, and the local clock is not revealed.
func Query(ctx context.Context, server netip.AddrPort, spec measure.NTPSpec, opt Options) (*measure.NTPResult, error) {
	res := &measure.NTPResult{Server: server.String()}
	timeout := time.Duration(spec.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := opt.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "udp", server.String())
	if err != nil {
		return res, fmt.Errorf("open ntp socket: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return res, fmt.Errorf("set ntp deadline: %w", err)
	}
	req := make([]byte, PacketSize)
	req[0] = 0<<6 | 4<<3 | 3 // no leap warning, version 4, client
	var cookie [8]byte
	if _, err := rand.Read(cookie[:]); err != nil {
		return res, fmt.Errorf("ntp cookie: %w", err)
	}
	copy(req[40:], cookie[:])
	t1 := opt.now()
	if _, err := conn.Write(req); err != nil {
		res.Error = "send: " + err.Error()
		return res, nil
	}
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		t4 := opt.now()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() || ctx.Err() != nil:
				res.Error = "timeout"
			case errors.Is(err, syscall.ECONNREFUSED):
				res.Error = "refused" // ICMP port unreachable: no NTP server there
			default:
				res.Error = "receive: " + err.Error()
			}
			return res, nil
		}
		p, err := ParsePacket(buf[:n])
		if err != nil {
			res.Error = "malformed reply: " + err.Error()
			return res, nil
		}
		if p.Origin != binary.BigEndian.Uint64(cookie[:]) {
			continue // not the answer to our request: keep waiting until the deadline
		}
		Fill(res, &p, t1, t4)
		return res, nil
	}
}

// Fill records reply p, received at t4 for a request sent at t1, in res.
func Fill(res *measure.NTPResult, p *Packet, t1, t4 time.Time) {
	res.Version, res.Leap, res.Stratum = p.Version, p.Leap, p.Stratum
	res.RefID = p.RefIDString()
	res.RootDelayMS = ms(p.RootDelay)
	res.RootDispMS = ms(p.RootDisp)
	if k := p.Kiss(); k != "" {
		// Kiss-o'-death: the server's times mean nothing; say so and stop.
		res.Kiss = k
		res.RTT = ms(t4.Sub(t1))
		return
	}
	t2, t3 := toTime(p.Receive), toTime(p.Transmit)
	rtt := t4.Sub(t1) - t3.Sub(t2)
	if rtt < 0 {
		rtt = t4.Sub(t1) // server times inconsistent with ours; the wire time still bounds it
	}
	res.RTT = ms(rtt)
	res.OffsetMS = ms((t2.Sub(t1) + t3.Sub(t4)) / 2)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
