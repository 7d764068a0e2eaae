// Package dnstest runs a small authoritative DNS server on loopback for
// tests: it answers CHAOS TXT hostname.bind. and id.server., the EDNS NSID
// option, and a few IN records, and can be told to misbehave (hide its
// identity, truncate UDP replies, drop queries, reply late, with the wrong
// id, or with garbage) so that engines, the agent and end-to-end tests can
// exercise every path without sending a packet off the machine.
//
// The server listens on UDP and TCP on the same loopback port and is shut
// down by tb.Cleanup; its handler goroutines never outlive the test.
package dnstest

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// Defaults for the identity strings of a zero Config.
const (
	DefaultHostname = "ams1.lab.anycatch.test"
	DefaultIDServer = "ams1"
	DefaultNSID     = "ams1-ns1"
)

// Config says how the server answers. The zero value answers CHAOS
// hostname.bind./id.server. with the Default* strings, NSID with
// DefaultNSID, over 127.0.0.1, promptly and correctly.
type Config struct {
	Hostname string // hostname.bind. TXT; "" means DefaultHostname
	IDServer string // id.server. TXT; "" means DefaultIDServer
	NSID     string // NSID payload (bytes as given); "" means DefaultNSID
	NoNSID   bool   // never send NSID, even when asked

	HideIdentity bool // CHAOS queries get REFUSED and no NSID is sent
	NSIDOnly     bool // CHAOS queries get REFUSED, but NSID is still sent

	// Records are extra zone data in presentation form
	// ("www.example.test. 300 IN A 198.51.100.1"), answered for queries of
	// class IN; an unknown IN name gets NXDOMAIN.
	Records []string

	TruncateUDP bool          // UDP replies have TC set and no records: forces TCP fallback
	DropFirst   int           // ignore the first N queries (either transport)
	Delay       time.Duration // wait this long before each reply
	WrongID     bool          // send a correct reply under a different id
	Garbage     bool          // send bytes that carry the query id but do not parse

	// Reply, when set, overrides everything else: it gets the raw query and
	// the transport ("udp" or "tcp") and returns the raw reply to send, or
	// nil to send nothing.
	Reply func(query []byte, proto string) []byte

	IPv6 bool // listen on [::1] instead of 127.0.0.1
}

// Server is a running test server.
type Server struct {
	Addr netip.AddrPort // UDP and TCP

	cfg     Config
	records []mdns.RR
	queries atomic.Int64
	udp     atomic.Int64
	tcp     atomic.Int64
	done    chan struct{}
}

// Start runs a server for cfg and returns its address.
func Start(tb testing.TB, cfg Config) netip.AddrPort {
	tb.Helper()
	return StartServer(tb, cfg).Addr
}

// StartServer runs a server for cfg and returns it, for tests that count
// queries.
func StartServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := newServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	stop, err := s.serve()
	if err != nil {
		tb.Skipf("dnstest: %v", err)
	}
	tb.Cleanup(stop)
	return s
}

// Listen runs a server for cfg outside a test (a runnable Example); the
// caller must call stop, which waits for the server's goroutines.
func Listen(cfg Config) (s *Server, stop func(), err error) {
	if s, err = newServer(cfg); err != nil {
		return nil, nil, err
	}
	if stop, err = s.serve(); err != nil {
		return nil, nil, err
	}
	return s, stop, nil
}

func newServer(cfg Config) (*Server, error) {
	if cfg.Hostname == "" {
		cfg.Hostname = DefaultHostname
	}
	if cfg.IDServer == "" {
		cfg.IDServer = DefaultIDServer
	}
	if cfg.NSID == "" {
		cfg.NSID = DefaultNSID
	}
	s := &Server{cfg: cfg, done: make(chan struct{})}
	for _, r := range cfg.Records {
		rr, err := mdns.NewRR(r)
		if err != nil || rr == nil {
			return nil, fmt.Errorf("dnstest: bad record %q: %v", r, err)
		}
		s.records = append(s.records, rr)
	}
	return s, nil
}

// serve starts the UDP and TCP servers; stop shuts them down and waits.
func (s *Server) serve() (stop func(), err error) {
	host := "127.0.0.1"
	if s.cfg.IPv6 {
		host = "::1"
	}
	pc, ln, err := listenPair(host)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", host, err)
	}
	s.Addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()

	var started sync.WaitGroup
	servers := []*mdns.Server{
		{PacketConn: pc, Handler: s.handler("udp")},
		{Listener: ln, Handler: s.handler("tcp")},
	}
	var served sync.WaitGroup
	for _, srv := range servers {
		started.Add(1)
		served.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() {
			defer served.Done()
			srv.ActivateAndServe()
		}()
	}
	started.Wait()
	return func() {
		close(s.done)
		for _, srv := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.ShutdownContext(ctx)
			cancel()
		}
		served.Wait()
	}, nil
}

// Queries returns how many queries arrived, in total and per transport.
func (s *Server) Queries() (total, udp, tcp int) {
	return int(s.queries.Load()), int(s.udp.Load()), int(s.tcp.Load())
}

// listenPair opens UDP and TCP sockets on the same free loopback port.
func listenPair(host string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, itoa(port)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, nil, lastErr
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func (s *Server) handler(proto string) mdns.HandlerFunc {
	return func(w mdns.ResponseWriter, req *mdns.Msg) {
		n := s.queries.Add(1)
		if proto == "udp" {
			s.udp.Add(1)
		} else {
			s.tcp.Add(1)
		}
		if n <= int64(s.cfg.DropFirst) {
			return
		}
		if s.cfg.Delay > 0 {
			t := time.NewTimer(s.cfg.Delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
		}
		if s.cfg.Reply != nil {
			raw, err := req.Pack()
			if err != nil {
				return
			}
			if out := s.cfg.Reply(raw, proto); out != nil {
				w.Write(out)
			}
			return
		}
		if s.cfg.Garbage {
			// A header claiming one question, then a label running off the end.
			g := []byte{0, 0, 0x84, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, 'g', 'a', 'r', 'b'}
			binary.BigEndian.PutUint16(g, req.Id)
			w.Write(g)
			return
		}
		m := s.answer(req, proto)
		if s.cfg.WrongID {
			m.Id = req.Id ^ 0x5a5a
		}
		out, err := m.Pack()
		if err != nil {
			return
		}
		w.Write(out)
	}
}

func (s *Server) answer(req *mdns.Msg, proto string) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = false
	if len(req.Question) != 1 {
		m.Rcode = mdns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	switch q.Qclass {
	case mdns.ClassCHAOS:
		txt := map[string]string{"hostname.bind.": s.cfg.Hostname, "id.server.": s.cfg.IDServer}[name]
		switch {
		case s.cfg.HideIdentity || s.cfg.NSIDOnly || txt == "":
			m.Rcode = mdns.RcodeRefused
		case q.Qtype == mdns.TypeTXT || q.Qtype == mdns.TypeANY:
			m.Answer = append(m.Answer, &mdns.TXT{
				Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeTXT, Class: mdns.ClassCHAOS},
				Txt: []string{txt},
			})
		}
	case mdns.ClassINET:
		found := false
		for _, rr := range s.records {
			h := rr.Header()
			if !strings.EqualFold(h.Name, q.Name) {
				continue
			}
			found = true
			if h.Rrtype == q.Qtype || q.Qtype == mdns.TypeANY {
				m.Answer = append(m.Answer, mdns.Copy(rr))
			}
		}
		if !found {
			m.Rcode = mdns.RcodeNameError
		}
	default:
		m.Rcode = mdns.RcodeRefused
	}
	if o := req.IsEdns0(); o != nil {
		ro := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
		ro.SetUDPSize(1232)
		asked := false
		for _, e := range o.Option {
			if e.Option() == mdns.EDNS0NSID {
				asked = true
			}
		}
		if asked && !s.cfg.NoNSID && !s.cfg.HideIdentity {
			ro.Option = append(ro.Option, &mdns.EDNS0_NSID{Code: mdns.EDNS0NSID, Nsid: hex.EncodeToString([]byte(s.cfg.NSID))})
		}
		m.Extra = append(m.Extra, ro)
	}
	if proto == "udp" && s.cfg.TruncateUDP {
		m.Truncated = true
		m.Answer = nil
	}
	return m
}
