package site

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/anycatch/anycatch/census"
)

// conn is one raw ICMP socket bound to the anycast address: it sends the
// census echo requests (the kernel sets the bound address as source) and
// receives every echo reply to that address. Tests replace it.
type conn interface {
	// WriteTo sends an ICMP message (checksum computed for IPv4; the
	// kernel computes ICMPv6 checksums).
	WriteTo(b []byte, dst netip.Addr) error
	// ReadFrom returns one ICMP message (no IP header) and its source.
	ReadFrom(b []byte) (int, netip.Addr, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// rawConn is the real conn over x/net/icmp.
type rawConn struct{ pc *icmp.PacketConn }

func (c *rawConn) WriteTo(b []byte, dst netip.Addr) error {
	_, err := c.pc.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()})
	return err
}

func (c *rawConn) ReadFrom(b []byte) (int, netip.Addr, error) {
	n, from, err := c.pc.ReadFrom(b)
	if err != nil {
		return 0, netip.Addr{}, err
	}
	ip, _ := from.(*net.IPAddr)
	if ip == nil {
		return n, netip.Addr{}, nil
	}
	a, _ := netip.AddrFromSlice(ip.IP)
	return n, a.Unmap(), nil
}

func (c *rawConn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }
func (c *rawConn) Close() error                      { return c.pc.Close() }

// magic32 is the first four payload bytes of every census probe: the
// socket filter passes only echo replies that carry it, so the agent does
// not wake for the site's other ICMP traffic.
var magic32 = uint32(census.Magic[0])<<24 | uint32(census.Magic[1])<<16 | uint32(census.Magic[2])<<8 | uint32(census.Magic[3])

// filter4 runs on whole IPv4 packets (raw IPv4 sockets see the header):
// ICMP type 0 (echo reply) with the census magic after the 8-byte ICMP
// header.
var filter4 = []bpf.Instruction{
	bpf.LoadMemShift{Off: 0},          // X = IP header length
	bpf.LoadIndirect{Off: 0, Size: 1}, // ICMP type
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 3},
	bpf.LoadIndirect{Off: 8, Size: 4}, // first payload word
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: magic32, SkipTrue: 1},
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
}

// filter6 runs on the ICMPv6 message (raw IPv6 sockets see no IPv6
// header): type 129 (echo reply) with the census magic.
var filter6 = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 0, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 129, SkipTrue: 3},
	bpf.LoadAbsolute{Off: 8, Size: 4},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: magic32, SkipTrue: 1},
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
}

// listenRaw opens the raw ICMP socket of addr's family bound to addr
// (binding makes the kernel deliver only packets to that address) with
// the census socket filter, inside network namespace netns when it is not
// "" (the lab runs agents that way; see docs/census.md).
func listenRaw(addr netip.Addr, netns string) (conn, error) {
	network, filter := "ip4:icmp", filter4
	if addr.Is6() {
		network, filter = "ip6:ipv6-icmp", filter6
	}
	prog, err := bpf.Assemble(filter)
	if err != nil {
		return nil, fmt.Errorf("assemble socket filter: %w", err)
	}
	var pc *icmp.PacketConn
	open := func() error {
		var err error
		pc, err = icmp.ListenPacket(network, addr.String())
		return err
	}
	if netns == "" {
		err = open()
	} else {
		err = inNetns(netns, open)
	}
	if err != nil {
		return nil, fmt.Errorf("open raw ICMP socket on %s: %w (needs root or CAP_NET_RAW, and the anycast address configured on this host)", addr, err)
	}
	if addr.Is4() {
		err = pc.IPv4PacketConn().SetBPF(prog)
	} else {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		if err = pc.IPv6PacketConn().SetICMPFilter(&f); err == nil {
			err = pc.IPv6PacketConn().SetBPF(prog)
		}
	}
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("attach socket filter on %s: %w", addr, err)
	}
	return &rawConn{pc: pc}, nil
}

// echoRequest marshals a census echo request.
func echoRequest(v6 bool, id, seq int, payload []byte) ([]byte, error) {
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	return (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}).Marshal(nil)
}

// parseEchoReply returns the payload of an echo reply, or false for
// anything else. It distrusts the message: length and type are checked
// before anything is read.
func parseEchoReply(v6 bool, b []byte) ([]byte, bool) {
	if len(b) < 8 {
		return nil, false
	}
	if v6 && b[0] != 129 || !v6 && b[0] != 0 || b[1] != 0 {
		return nil, false
	}
	return b[8:], true
}

// inNetns runs fn on a thread switched into the named network namespace,
// so that sockets fn creates belong to it. If switching back fails the
// thread stays locked and dies with its goroutine rather than run other
// code in the wrong namespace.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
