package icmpwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/sys/unix"
)

// ErrQueueConn is an unprivileged probe socket (UDP, or an ICMP datagram
// socket) with IP_RECVERR / IPV6_RECVERR on: ICMP errors about its
// packets are read back from the socket's error queue (MSG_ERRQUEUE) with
// the offender's address, as tracepath does. No capability is needed.
type ErrQueueConn struct {
	v6    bool
	proto int
	pc    net.PacketConn
	rc    syscall.RawConn
	local netip.AddrPort

	recverr bool
}

// ListenErrQueue opens an unconnected probe socket bound to src (which may
// be the zero Addr for "any") with a kernel-chosen port. proto is
// [ProtoUDP] or [ProtoICMP] (an ICMP datagram socket; ICMPv6 for v6).
// With recverr false it is a plain sender (errors are not queued), for
// when a raw socket receives them instead.
func ListenErrQueue(v6 bool, proto int, src netip.Addr, recverr bool) (*ErrQueueConn, error) {
	c := &ErrQueueConn{v6: v6, proto: proto, recverr: recverr}
	network, any := "udp4", "0.0.0.0"
	if v6 {
		network, any = "udp6", "::"
	}
	laddr := any
	if src.IsValid() {
		laddr = src.String()
	}
	var err error
	switch proto {
	case ProtoUDP:
		c.pc, err = net.ListenPacket(network, net.JoinHostPort(laddr, "0"))
	case ProtoICMP:
		c.pc, err = icmp.ListenPacket(network, laddr)
	default:
		return nil, fmt.Errorf("listen error queue: unsupported protocol %d", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", network, err)
	}
	if err := c.setup(); err != nil {
		c.pc.Close()
		return nil, err
	}
	return c, nil
}

func (c *ErrQueueConn) setup() error {
	var inner net.PacketConn = c.pc
	if ic, ok := c.pc.(*icmp.PacketConn); ok {
		// icmp.PacketConn hides its socket; its IPv4/IPv6 views expose
		// the file descriptor through their underlying conn.
		if c.v6 {
			inner = ic.IPv6PacketConn().PacketConn
		} else {
			inner = ic.IPv4PacketConn().PacketConn
		}
	}
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return errors.New("error queue socket: no raw access")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("error queue socket: %w", err)
	}
	c.rc = rc
	var serr error
	err = rc.Control(func(fd uintptr) {
		if !c.recverr {
			return
		}
		if c.v6 {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_RECVERR, 1)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
			}
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVERR, 1)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVTTL, 1)
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("enable recverr: %w", err)
	}
	if ua, ok := inner.LocalAddr().(*net.UDPAddr); ok {
		c.local = ua.AddrPort()
	}
	return nil
}

// LocalPort is the socket's port: the UDP source port, or for ICMP
// datagram sockets the echo id the kernel writes.
func (c *ErrQueueConn) LocalPort() uint16 { return c.local.Port() }

// SetTTL sets the TTL / hop limit of packets sent from now on.
func (c *ErrQueueConn) SetTTL(ttl int) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		if c.v6 {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TTL, ttl)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// WriteTo sends b to dst (port is ignored for ICMP). A pending error the
// kernel reports on send (an earlier ICMP error already queued) is
// retried once: it was consumed by the failed call.
func (c *ErrQueueConn) WriteTo(b []byte, dst netip.AddrPort) error {
	a := net.UDPAddrFromAddrPort(dst)
	_, err := c.pc.WriteTo(b, a)
	if err != nil && isAsyncICMPErr(err) {
		_, err = c.pc.WriteTo(b, a)
	}
	return err
}

func isAsyncICMPErr(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.EHOSTUNREACH) ||
		errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EPROTO)
}

// SetReadDeadline bounds reads.
func (c *ErrQueueConn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// Close closes the socket.
func (c *ErrQueueConn) Close() error { return c.pc.Close() }

// QueueMsg is one thing read from an [ErrQueueConn]: an error from the
// error queue (Err true) or ordinary data (an echo reply, or a UDP answer
// from the destination).
type QueueMsg struct {
	Err      bool
	Ext      ExtendedErr
	TTL      int        // reply TTL / hop limit, 0 when unknown
	From     netip.Addr // data: sender
	Payload  []byte     // error: the quoted bytes after the UDP header, or from the quoted ICMP header on; data: the datagram
	Received time.Time
}

// Read reads the next error or datagram into b (oob is scratch for
// control messages, 512 bytes is plenty). It blocks until one arrives or
// the read deadline passes.
func (c *ErrQueueConn) Read(b, oob []byte) (QueueMsg, error) {
	var m QueueMsg
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, e := unix.Recvmsg(int(fd), b, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if e == nil {
			m.Err = true
			m.Payload = b[:n]
			m.Ext, m.TTL, rerr = ParseErrQueue(oob[:oobn], c.v6)
			return true
		}
		if e != unix.EAGAIN {
			rerr = e
			return true
		}
		// Bounded: each pending socket error is returned (and cleared) once.
		for range 4 {
			var from unix.Sockaddr
			n, oobn, _, from, e = unix.Recvmsg(int(fd), b, oob, unix.MSG_DONTWAIT)
			switch {
			case e == nil:
				m.Payload = b[:n]
				m.From = sockaddrAddr(from)
				_, m.TTL, _ = ParseErrQueue(oob[:oobn], c.v6)
				return true
			case e == unix.EAGAIN:
				return false
			case isAsyncICMPErr(e):
				continue // the same error is (also) on the queue
			default:
				rerr = e
				return true
			}
		}
		return false
	})
	if err != nil {
		return m, err
	}
	return m, rerr
}

func sockaddrAddr(sa unix.Sockaddr) netip.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// Origins of an extended error (linux/errqueue.h).
const (
	OriginLocal = 1
	OriginICMP  = 2
	OriginICMP6 = 3
)

// ExtendedErr is a decoded struct sock_extended_err with its offender.
type ExtendedErr struct {
	Errno    uint32
	Origin   uint8
	Type     uint8
	Code     uint8
	Info     uint32 // e.g. the MTU of a "fragmentation needed"
	Offender netip.Addr
}

var errNoExtErr = errors.New("recverr: no extended error in control data")

// ParseErrQueue decodes control messages read with MSG_ERRQUEUE: the
// IP_RECVERR / IPV6_RECVERR extended error and offender, and the
// IP_TTL / IPV6_HOPLIMIT of the ICMP error. It is also used on ordinary
// reads to pick up the TTL (the error is then absent).
func ParseErrQueue(oob []byte, v6 bool) (ee ExtendedErr, ttl int, err error) {
	const hdr = unix.SizeofCmsghdr
	found := false
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < hdr || l > len(oob) {
			break
		}
		data := oob[hdr:l]
		switch {
		case !v6 && level == unix.SOL_IP && typ == unix.IP_RECVERR,
			v6 && level == unix.SOL_IPV6 && typ == unix.IPV6_RECVERR:
			if len(data) >= 16 {
				ee.Errno = binary.NativeEndian.Uint32(data[0:4])
				ee.Origin, ee.Type, ee.Code = data[4], data[5], data[6]
				ee.Info = binary.NativeEndian.Uint32(data[8:12])
				ee.Offender = offender(data[16:])
				found = true
			}
		case !v6 && level == unix.SOL_IP && typ == unix.IP_TTL,
			v6 && level == unix.SOL_IPV6 && typ == unix.IPV6_HOPLIMIT:
			if len(data) >= 4 {
				if v := int32(binary.NativeEndian.Uint32(data)); v > 0 && v < 256 {
					ttl = int(v)
				}
			}
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	if !found {
		return ee, ttl, errNoExtErr
	}
	return ee, ttl, nil
}

// offender decodes the sockaddr_in / sockaddr_in6 (SO_EE_OFFENDER) that
// follows sock_extended_err.
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}
