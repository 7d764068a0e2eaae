package icmpwire

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Conn is one ICMP socket: raw (needs CAP_NET_RAW; sees every ICMP message
// the host receives) or ICMP datagram (unprivileged where
// net.ipv4.ping_group_range allows; the kernel owns the echo id and only
// delivers replies and errors for it).
type Conn struct {
	v6    bool
	dgram bool
	pc    *icmp.PacketConn
	p4    *ipv4.PacketConn
	p6    *ipv6.PacketConn
	id    uint16
}

// ListenICMP opens an ICMP socket for IPv4 or IPv6, raw or datagram, with
// reply TTL / hop limit reporting turned on.
func ListenICMP(v6, dgram bool) (*Conn, error) {
	network, laddr := "ip4:icmp", "0.0.0.0"
	switch {
	case v6 && dgram:
		network, laddr = "udp6", "::"
	case v6:
		network, laddr = "ip6:ipv6-icmp", "::"
	case dgram:
		network = "udp4"
	}
	pc, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", network, err)
	}
	c := &Conn{v6: v6, dgram: dgram, pc: pc}
	if v6 {
		c.p6 = pc.IPv6PacketConn()
		err = c.p6.SetControlMessage(ipv6.FlagHopLimit, true)
	} else {
		c.p4 = pc.IPv4PacketConn()
		err = c.p4.SetControlMessage(ipv4.FlagTTL, true)
	}
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("enable reply ttl on %s: %w", network, err)
	}
	if dgram {
		if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
			c.id = uint16(ua.Port)
		}
	}
	return c, nil
}

// Dgram reports whether c is an unprivileged ICMP datagram socket.
func (c *Conn) Dgram() bool { return c.dgram }

// EchoID returns the echo identifier the kernel writes into every request
// sent on a datagram socket (its local "port"); ok is false for raw sockets,
// where the caller chooses the id.
func (c *Conn) EchoID() (id uint16, ok bool) { return c.id, c.dgram }

// AcceptOnly installs an ICMP_FILTER on a raw socket so that only the
// given types reach it (every raw socket otherwise sees all host ICMP). It
// is a no-op on datagram sockets.
func (c *Conn) AcceptOnly(types ...uint8) error {
	if c.dgram {
		return nil
	}
	if c.v6 {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		for _, t := range types {
			f.Accept(ipv6.ICMPType(t))
		}
		return c.p6.SetICMPFilter(&f)
	}
	var f ipv4.ICMPFilter
	f.SetAll(true)
	for _, t := range types {
		f.Accept(ipv4.ICMPType(t))
	}
	return c.p4.SetICMPFilter(&f)
}

// SetTTL sets the TTL / hop limit of unicast packets sent from now on.
func (c *Conn) SetTTL(ttl int) error {
	if c.v6 {
		return c.p6.SetHopLimit(ttl)
	}
	return c.p4.SetTTL(ttl)
}

// WriteTo sends one ICMP message to dst.
func (c *Conn) WriteTo(b []byte, dst netip.Addr) error {
	var a net.Addr
	if c.dgram {
		a = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	} else {
		a = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	_, err := c.pc.WriteTo(b, a)
	return err
}

// ReadFrom reads one ICMP message into b (without IP header) and returns
// its length, the reply's TTL / hop limit (0 when unknown) and source.
func (c *Conn) ReadFrom(b []byte) (n, ttl int, src netip.Addr, err error) {
	var from net.Addr
	if c.v6 {
		var cm *ipv6.ControlMessage
		n, cm, from, err = c.p6.ReadFrom(b)
		if cm != nil {
			ttl = cm.HopLimit
		}
	} else {
		var cm *ipv4.ControlMessage
		n, cm, from, err = c.p4.ReadFrom(b)
		if cm != nil {
			ttl = cm.TTL
		}
	}
	if err != nil {
		return 0, 0, netip.Addr{}, err
	}
	return n, ttl, AddrOf(from), nil
}

// SetReadDeadline bounds the current and future reads.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// Close closes the socket.
func (c *Conn) Close() error { return c.pc.Close() }

// AddrOf returns the IP address of a socket address, unmapped, or the zero
// Addr.
func AddrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return netip.Addr{}
	}
	ad, _ := netip.AddrFromSlice(ip)
	return ad.Unmap()
}

// IsTimeout reports whether err is a read deadline expiring.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// SourceFor returns the local address the kernel would use to reach dst,
// without sending anything (a connected UDP socket's local address).
func SourceFor(dst netip.Addr) (netip.Addr, error) {
	network := "udp4"
	if dst.Is6() {
		network = "udp6"
	}
	uc, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %s: %w", dst, err)
	}
	defer uc.Close()
	return uc.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
