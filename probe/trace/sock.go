package trace

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

func randBytes(b []byte) { rand.Read(b) }

// icmpConn is the raw ICMP socket a raw prober reads replies from (and
// sends ICMP probes on); *icmpwire.Conn implements it.
type icmpConn interface {
	SetTTL(ttl int) error
	WriteTo(b []byte, dst netip.Addr) error
	ReadFrom(b []byte) (n, ttl int, src netip.Addr, err error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// udpConn sends UDP probes; *icmpwire.ErrQueueConn implements it.
type udpConn interface {
	SetTTL(ttl int) error
	WriteTo(b []byte, dst netip.AddrPort) error
	Close() error
}

var (
	_ icmpConn = (*icmpwire.Conn)(nil)
	_ udpConn  = (*icmpwire.ErrQueueConn)(nil)
)

// rawProber receives on a raw ICMP socket; it sends ICMP probes on the
// same socket and UDP probes on udp.
type rawProber struct {
	f    *flow
	ic   icmpConn
	udp  udpConn // nil for ICMP traces
	pkt  []byte
	buf  []byte
	drop int // replies dropped as foreign, forged or truncated (for tests)
}

func openRaw(f *flow) (prober, error) {
	src, err := icmpwire.SourceFor(f.dst)
	if err != nil {
		return nil, err
	}
	f.src = src
	ic, err := icmpwire.ListenICMP(f.v6, false)
	if err != nil {
		return nil, err
	}
	if f.v6 {
		err = ic.AcceptOnly(icmpwire.V6Unreachable, icmpwire.V6PacketTooBig, icmpwire.V6TimeExceeded, icmpwire.V6ParamProblem, icmpwire.V6EchoReply)
	} else {
		err = ic.AcceptOnly(icmpwire.V4Unreachable, icmpwire.V4TimeExceeded, icmpwire.V4ParamProblem, icmpwire.V4EchoReply)
	}
	if err != nil {
		ic.Close()
		return nil, fmt.Errorf("icmp filter: %w", err)
	}
	p := &rawProber{f: f, ic: ic}
	if f.proto == icmpwire.ProtoUDP {
		uc, err := icmpwire.ListenErrQueue(f.v6, icmpwire.ProtoUDP, src, false)
		if err != nil {
			ic.Close()
			return nil, err
		}
		p.udp = uc
		f.sport = uc.LocalPort()
	}
	f.setFlowID()
	return p, nil
}

// setFlowID records the ICMP checksum every probe carries.
func (f *flow) setFlowID() {
	if f.proto != icmpwire.ProtoICMP {
		return
	}
	b := f.echo(nil, 0)
	if f.v6 {
		if f.src.IsValid() {
			f.flowID = icmpwire.ICMPv6Checksum(b, f.src, f.dst)
		}
		return
	}
	f.flowID = uint16(b[2])<<8 | uint16(b[3])
}

func (p *rawProber) send(ttl, idx int) error {
	if p.udp != nil {
		if err := p.udp.SetTTL(ttl); err != nil {
			return err
		}
		p.pkt = p.f.udpPayload(p.pkt[:0], idx)
		return p.udp.WriteTo(p.pkt, netip.AddrPortFrom(p.f.dst, p.f.dport))
	}
	if err := p.ic.SetTTL(ttl); err != nil {
		return err
	}
	p.pkt = p.f.echo(p.pkt[:0], idx)
	return p.ic.WriteTo(p.pkt, p.f.dst)
}

func (p *rawProber) recv(ctx context.Context, deadline time.Time) (reply, bool, error) {
	if p.buf == nil {
		p.buf = make([]byte, 1<<16)
	}
	p.ic.SetReadDeadline(deadline)
	// Every read either returns a packet or hits the deadline, so this
	// loop ends even under a flood of foreign ICMP.
	for ctx.Err() == nil {
		n, ttl, src, err := p.ic.ReadFrom(p.buf)
		if err != nil {
			if icmpwire.IsTimeout(err) {
				return reply{}, false, nil
			}
			return reply{}, false, err
		}
		r, err := p.f.match(p.buf[:n], src, ttl)
		if err != nil {
			p.drop++
			continue
		}
		return r, true, nil
	}
	return reply{}, false, nil
}

func (p *rawProber) unblock() { p.ic.SetReadDeadline(time.Unix(1, 0)) }

func (p *rawProber) close() error {
	if p.udp != nil {
		p.udp.Close()
	}
	return p.ic.Close()
}

// queueConn is an unprivileged probe socket with an error queue;
// *icmpwire.ErrQueueConn implements it.
type queueConn interface {
	udpConn
	Read(b, oob []byte) (icmpwire.QueueMsg, error)
	SetReadDeadline(t time.Time) error
}

var _ queueConn = (*icmpwire.ErrQueueConn)(nil)

// recvErrProber sends and receives on one unprivileged socket.
type recvErrProber struct {
	f    *flow
	c    queueConn
	pkt  []byte
	buf  []byte
	oob  []byte
	drop int
}

func openRecvErr(f *flow) (prober, error) {
	src, err := icmpwire.SourceFor(f.dst)
	if err != nil {
		return nil, err
	}
	f.src = src
	c, err := icmpwire.ListenErrQueue(f.v6, int(f.proto), src, true)
	if err != nil {
		return nil, err
	}
	if f.proto == icmpwire.ProtoUDP {
		f.sport = c.LocalPort()
	} else {
		f.id = c.LocalPort() // the kernel writes its own echo id
	}
	f.setFlowID()
	return &recvErrProber{f: f, c: c}, nil
}

func (p *recvErrProber) send(ttl, idx int) error {
	if err := p.c.SetTTL(ttl); err != nil {
		return err
	}
	if p.f.proto == icmpwire.ProtoUDP {
		p.pkt = p.f.udpPayload(p.pkt[:0], idx)
	} else {
		p.pkt = p.f.echo(p.pkt[:0], idx)
	}
	return p.c.WriteTo(p.pkt, netip.AddrPortFrom(p.f.dst, p.f.dport))
}

func (p *recvErrProber) recv(ctx context.Context, deadline time.Time) (reply, bool, error) {
	if p.buf == nil {
		p.buf = make([]byte, 1<<16)
		p.oob = make([]byte, 512)
	}
	p.c.SetReadDeadline(deadline)
	for ctx.Err() == nil {
		m, err := p.c.Read(p.buf, p.oob)
		if err != nil {
			if icmpwire.IsTimeout(err) {
				return reply{}, false, nil
			}
			if m.Err {
				p.drop++ // control data we could not decode
				continue
			}
			return reply{}, false, err
		}
		r, err := p.f.matchQueued(&m)
		if err != nil {
			p.drop++
			continue
		}
		return r, true, nil
	}
	return reply{}, false, nil
}

func (p *recvErrProber) unblock() { p.c.SetReadDeadline(time.Unix(1, 0)) }

func (p *recvErrProber) close() error { return p.c.Close() }
