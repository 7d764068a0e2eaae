// Package dns is the probe's DNS engine: one query of any class and type
// (CHAOS included) over UDP with TCP fallback on truncation, or over TCP on
// request, with EDNS0 and the NSID option; and the identity measurement,
// which asks CHAOS TXT hostname.bind and id.server concurrently.
//
// miekg/dns packs and unpacks messages; the sockets are our own so that
// every read and write carries a deadline derived from the spec and the
// caller's context, and so that the reply bytes are kept exactly as
// received. Replies are distrusted: a reply with the wrong id or question,
// or one that does not parse, is reported in [measure.DNSExchange.Error]
// and never causes a panic or a hang.
package dns

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/anycatch/anycatch/measure"
)

// Options configures the engine for the process; per-measurement settings
// live in [measure.DNSSpec]. The zero value is ready to use.
type Options struct {
	// Dial opens the socket for one exchange ("udp" or "tcp" network,
	// "host:port" address). Nil means a net.Dialer bound to LocalAddr.
	// Tests inject fake sockets here.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	// LocalAddr is the source address to bind. The zero value lets the
	// kernel choose. Ignored when Dial is set.
	LocalAddr netip.Addr

	// Now returns the current time. Nil means time.Now. RTTs are measured
	// with it, so a fake clock must be monotonic.
	Now func() time.Time

	// ID returns the message id for each query sent. Nil means a random id
	// from crypto/rand per try.
	ID func() uint16
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) id() uint16 {
	if o.ID != nil {
		return o.ID()
	}
	return mdns.Id()
}

func (o *Options) dial(ctx context.Context, network string, server netip.AddrPort) (net.Conn, error) {
	if o.Dial != nil {
		return o.Dial(ctx, network, server.String())
	}
	d := net.Dialer{}
	if o.LocalAddr.IsValid() {
		if network == "tcp" {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(o.LocalAddr, 0))
		} else {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.LocalAddr, 0))
		}
	}
	return d.DialContext(ctx, network, server.String())
}

// Exchange errors recorded in [measure.DNSExchange.Error].
const (
	ErrTimeout         = "timeout"
	ErrIDMismatch      = "id mismatch"
	ErrQuestion        = "question mismatch"
	ErrRefused         = "connection refused" // ICMP port unreachable (UDP) or RST (TCP)
	ErrCanceled        = "canceled"           // the caller's context was canceled
	errMalformedPrefix = "malformed reply: "
)

// maxReply is the largest DNS message either transport can carry.
const maxReply = 65535

// query is one fully resolved question, ready to pack.
type query struct {
	name    string // fully qualified, as sent
	qtype   uint16
	qclass  uint16
	rd      bool
	nsid    bool
	udpSize uint16
	tcp     bool // TCP from the start
	timeout time.Duration
	retries int
}

// Query sends one DNS query described by spec (defaults applied here) to
// server and returns the exchange. A server port of 0 means spec.Port.
//
// Timeouts, REFUSED, truncation, and bad replies are results, recorded in
// the exchange; the error is non-nil only when the query could not be sent
// at all (invalid spec, no socket, no route).
func Query(ctx context.Context, server netip.AddrPort, spec measure.DNSSpec, opt Options) (*measure.DNSResult, error) {
	server, q, err := prepare(server, spec)
	if err != nil {
		return nil, err
	}
	ex, err := exchange(ctx, server, q, &opt)
	if err != nil {
		return nil, err
	}
	return &measure.DNSResult{Server: server.String(), Exchanges: []measure.DNSExchange{ex}}, nil
}

// Identity queries CHAOS TXT hostname.bind. and id.server. concurrently,
// each with the EDNS NSID option unless spec.NSID is false, and reports both
// exchanges plus the identity found: the first non-empty TXT string of each
// answer and the NSID from either reply. spec.QName, QClass and QType are
// ignored. The error is non-nil only when neither query could be sent.
func Identity(ctx context.Context, server netip.AddrPort, spec measure.DNSSpec, opt Options) (*measure.DNSResult, error) {
	names := [2]string{"hostname.bind.", "id.server."}
	var (
		exs  [2]measure.DNSExchange
		errs [2]error
		wg   sync.WaitGroup
	)
	for i, name := range names {
		s := spec
		s.QName, s.QClass, s.QType = name, "CH", "TXT"
		srv, q, err := prepare(server, s)
		if err != nil {
			return nil, err
		}
		server = srv
		wg.Add(1)
		go func() {
			defer wg.Done()
			exs[i], errs[i] = exchange(ctx, srv, q, &opt)
		}()
	}
	wg.Wait()
	if errs[0] != nil && errs[1] != nil {
		return nil, errs[0]
	}
	res := &measure.DNSResult{Server: server.String(), Identity: &measure.Identity{}}
	for i := range exs {
		if errs[i] != nil {
			exs[i] = measure.DNSExchange{
				QName: names[i], QClass: "CH", QType: "TXT", Proto: protoName(spec.Proto == "tcp"),
				Error: capString(errs[i].Error(), 512),
			}
		}
		res.Exchanges = append(res.Exchanges, exs[i])
	}
	res.Identity = IdentityOf(res.Exchanges)
	return res, nil
}

// maxIdentityField bounds each identity string so that the three together
// stay within [measure.MaxIdentityBytes].
const maxIdentityField = measure.MaxIdentityBytes / 3

// IdentityOf extracts the identity from identity exchanges: for the
// hostname.bind. and id.server. exchanges, the first non-empty TXT answer
// owned by the question name; the NSID of the first exchange that has one.
// Each string is cut to a third of [measure.MaxIdentityBytes].
func IdentityOf(exs []measure.DNSExchange) *measure.Identity {
	id := &measure.Identity{}
	for _, e := range exs {
		if e.NSID != "" && id.NSID == "" {
			id.NSID = capString(e.NSID, maxIdentityField)
		}
		if e.Error != "" || e.Rcode != "NOERROR" {
			continue
		}
		var dst *string
		switch strings.ToLower(e.QName) {
		case "hostname.bind.":
			dst = &id.HostnameBind
		case "id.server.":
			dst = &id.IDServer
		default:
			continue
		}
		if *dst != "" {
			continue
		}
		for _, rr := range e.Answers {
			if rr.Type == "TXT" && strings.EqualFold(rr.Name, e.QName) && rr.Data != "" {
				*dst = capString(rr.Data, maxIdentityField)
				break
			}
		}
	}
	return id
}

// prepare applies spec defaults and turns spec into a query, validating it.
func prepare(server netip.AddrPort, spec measure.DNSSpec) (netip.AddrPort, query, error) {
	full := measure.Spec{Kind: measure.KindDNS, DNS: &spec}
	if err := full.Validate(); err != nil {
		return server, query{}, err
	}
	s := *full.WithDefaults().DNS
	if !server.Addr().IsValid() {
		return server, query{}, fmt.Errorf("dns: invalid server address %q", server)
	}
	if server.Port() == 0 {
		server = netip.AddrPortFrom(server.Addr(), uint16(s.Port))
	}
	name := mdns.Fqdn(s.QName)
	if _, ok := mdns.IsDomainName(name); !ok {
		return server, query{}, fmt.Errorf("dns: qname %q is not a domain name", s.QName)
	}
	qtype, err := ParseType(s.QType)
	if err != nil {
		return server, query{}, err
	}
	qclass := uint16(mdns.ClassINET)
	if s.QClass == "CH" {
		qclass = mdns.ClassCHAOS
	}
	return server, query{
		name:    name,
		qtype:   qtype,
		qclass:  qclass,
		rd:      s.Recurse,
		nsid:    s.NSID == nil || *s.NSID,
		udpSize: uint16(s.UDPSize),
		tcp:     s.Proto == "tcp",
		timeout: time.Duration(s.TimeoutMS) * time.Millisecond,
		retries: s.Retries,
	}, nil
}

// ParseType returns the RR type for a mnemonic ("TXT", "aaaa") or the
// RFC 3597 generic form ("TYPE65").
func ParseType(s string) (uint16, error) {
	u := strings.ToUpper(s)
	if t, ok := mdns.StringToType[u]; ok {
		return t, nil
	}
	if rest, ok := strings.CutPrefix(u, "TYPE"); ok {
		if n, err := strconv.ParseUint(rest, 10, 16); err == nil {
			return uint16(n), nil
		}
	}
	return 0, fmt.Errorf("dns: unknown qtype %q", s)
}

func protoName(tcp bool) string {
	if tcp {
		return "tcp"
	}
	return "udp"
}

// pack builds the query message with the given id.
func (q *query) pack(id uint16) ([]byte, error) {
	m := new(mdns.Msg)
	m.Id = id
	m.RecursionDesired = q.rd
	m.Question = []mdns.Question{{Name: q.name, Qtype: q.qtype, Qclass: q.qclass}}
	opt := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
	opt.SetUDPSize(q.udpSize)
	if q.nsid {
		opt.Option = append(opt.Option, &mdns.EDNS0_NSID{Code: mdns.EDNS0NSID})
	}
	m.Extra = append(m.Extra, opt)
	return m.Pack()
}

// exchange runs one query: UDP tries (first plus retries) with TCP
// fallback on truncation, or one TCP try. The error is non-nil only when no
// socket could be opened or the first query could not be sent.
func exchange(ctx context.Context, server netip.AddrPort, q query, opt *Options) (measure.DNSExchange, error) {
	ex := measure.DNSExchange{
		QName:  q.name,
		QClass: mdns.Class(q.qclass).String(),
		QType:  mdns.Type(q.qtype).String(),
		Proto:  protoName(q.tcp),
	}
	if q.qclass == mdns.ClassCHAOS {
		ex.QClass = "CH" // the spec's spelling, whatever miekg calls it
	}
	var out outcome
	var err error
	if !q.tcp {
		out, err = udpExchange(ctx, server, q, opt)
		ex.Tries = out.tries
		if err != nil {
			return ex, err
		}
		if out.truncated {
			ex.TCPFallback = true
			ex.Proto = "tcp"
			tries := out.tries
			if out, err = tcpExchange(ctx, server, q, opt); err != nil {
				return ex, err
			}
			out.tries += tries
		}
	} else if out, err = tcpExchange(ctx, server, q, opt); err != nil {
		return ex, err
	}
	ex.Tries = out.tries
	fill(&ex, out)
	return ex, nil
}

// outcome is what one transport's attempt produced.
type outcome struct {
	tries     int
	rtt       time.Duration
	raw       []byte    // reply bytes as received (valid reply, or the last rejected one)
	msg       *mdns.Msg // parsed valid reply; nil when none
	truncated bool      // a valid UDP reply had TC set
	err       string    // why there is no valid reply
}

func fill(ex *measure.DNSExchange, out outcome) {
	if out.raw != nil {
		ex.Raw = out.raw
		if len(ex.Raw) > measure.MaxDNSRawBytes {
			ex.Raw = ex.Raw[:measure.MaxDNSRawBytes]
		}
	}
	if out.msg == nil {
		ex.Error = capString(out.err, 512)
		if ex.Error == "" {
			ex.Error = ErrTimeout
		}
		return
	}
	ex.RTT = ms(out.rtt)
	Decode(ex, out.msg)
}

// Decode fills ex's rcode, flags, answers and NSID from a parsed reply.
func Decode(ex *measure.DNSExchange, m *mdns.Msg) {
	ex.Rcode = rcodeString(m.Rcode)
	ex.Flags = flags(m)
	ex.Answers = nil
	for _, rr := range m.Answer {
		if len(ex.Answers) == measure.MaxAnswers {
			break
		}
		ex.Answers = append(ex.Answers, DecodeRR(rr))
	}
	if o := m.IsEdns0(); o != nil {
		for _, e := range o.Option {
			n, ok := e.(*mdns.EDNS0_NSID)
			if !ok {
				continue
			}
			b, err := hex.DecodeString(n.Nsid)
			if err != nil {
				continue
			}
			ex.NSIDHex = hex.EncodeToString(b) // normalised lower case
			ex.NSID = EscapeText(b)
			break
		}
	}
}

func rcodeString(rc int) string {
	if s, ok := mdns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

func flags(m *mdns.Msg) []string {
	var f []string
	add := func(set bool, name string) {
		if set {
			f = append(f, name)
		}
	}
	add(m.Response, "qr")
	add(m.Authoritative, "aa")
	add(m.Truncated, "tc")
	add(m.RecursionDesired, "rd")
	add(m.RecursionAvailable, "ra")
	add(m.AuthenticatedData, "ad")
	add(m.CheckingDisabled, "cd")
	return f
}

// DecodeRR turns a resource record into its wire-format form. TXT strings
// are concatenated without quotes (miekg's escaping of quotes, backslashes
// and non-printable bytes is kept); other types use the presentation form
// of their RDATA.
func DecodeRR(rr mdns.RR) measure.RR {
	h := rr.Header()
	out := measure.RR{
		Name:  h.Name,
		Type:  mdns.Type(h.Rrtype).String(),
		Class: mdns.Class(h.Class).String(),
		TTL:   h.Ttl,
	}
	if h.Class == mdns.ClassCHAOS {
		out.Class = "CH"
	}
	switch v := rr.(type) {
	case *mdns.TXT:
		out.Data = strings.Join(v.Txt, "")
	default:
		s := rr.String()
		hs := h.String()
		out.Data = strings.TrimPrefix(s, hs)
		if len(out.Data) == len(s) { // header form differed; fall back to the last tab field
			if i := strings.LastIndexByte(s, '\t'); i >= 0 {
				out.Data = s[i+1:]
			}
		}
	}
	out.Data = capString(out.Data, 4096)
	return out
}

// EscapeText renders b as text: printable ASCII is kept (a backslash is
// doubled), every other byte becomes \xNN.
func EscapeText(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c == '\\':
			sb.WriteString(`\\`)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	return sb.String()
}

// capString cuts s to at most n bytes without splitting a UTF-8 sequence.
func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := 0; i < 3 && len(s) > 0; i++ {
		if r := s[len(s)-1]; r < 0x80 || r >= 0xc0 {
			if r >= 0xc0 {
				s = s[:len(s)-1]
			}
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// verdict is what checking one reply decided.
type verdict int

const (
	accept    verdict = iota // a valid reply to one of our queries
	reject                   // not ours or not sane: keep waiting
	malformed                // carries our id but does not parse: final
)

// check validates a reply to a query for q sent with one of ids. It returns
// the verdict, the parsed message when accepted (header only for a
// truncated reply whose body does not parse), the reason otherwise, and the
// index of the try the reply's id belongs to (-1 if none).
func check(raw []byte, ids []uint16, q *query) (verdict, *mdns.Msg, string, int) {
	if len(raw) < 12 {
		return reject, nil, fmt.Sprintf("%sshort header (%d bytes)", errMalformedPrefix, len(raw)), -1
	}
	id := binary.BigEndian.Uint16(raw)
	try := -1
	for i, x := range ids {
		if x == id {
			try = i
		}
	}
	if try < 0 {
		return reject, nil, ErrIDMismatch, -1
	}
	bits := binary.BigEndian.Uint16(raw[2:])
	if bits&(1<<15) == 0 {
		return reject, nil, errMalformedPrefix + "QR bit not set", try
	}
	m := new(mdns.Msg)
	if err := m.Unpack(raw); err != nil {
		if bits&(1<<9) != 0 { // TC: a cut-off body is expected; the header is enough
			return accept, headerOnly(raw), "", try
		}
		return malformed, nil, errMalformedPrefix + err.Error(), try
	}
	switch {
	case len(m.Question) == 0 && m.Rcode != mdns.RcodeSuccess:
		// FORMERR/NOTIMP/REFUSED replies may drop the question.
	case len(m.Question) != 1,
		!strings.EqualFold(m.Question[0].Name, q.name),
		m.Question[0].Qtype != q.qtype,
		m.Question[0].Qclass != q.qclass:
		return reject, nil, ErrQuestion, try
	}
	return accept, m, "", try
}

// headerOnly decodes just the 12-byte header of raw (len(raw) >= 12).
func headerOnly(raw []byte) *mdns.Msg {
	bits := binary.BigEndian.Uint16(raw[2:])
	m := new(mdns.Msg)
	m.Id = binary.BigEndian.Uint16(raw)
	m.Response = bits&(1<<15) != 0
	m.Opcode = int(bits>>11) & 0xf
	m.Authoritative = bits&(1<<10) != 0
	m.Truncated = bits&(1<<9) != 0
	m.RecursionDesired = bits&(1<<8) != 0
	m.RecursionAvailable = bits&(1<<7) != 0
	m.AuthenticatedData = bits&(1<<5) != 0
	m.CheckingDisabled = bits&(1<<4) != 0
	m.Rcode = int(bits & 0xf)
	return m
}

// udpExchange sends the query up to 1+retries times over one connected
// UDP socket, a fresh id per try, and accepts a reply to any try (a late
// reply to try 1 arriving during try 2 is timed from try 1's send).
// Rejected replies are ignored until the try's deadline.
func udpExchange(ctx context.Context, server netip.AddrPort, q query, opt *Options) (outcome, error) {
	var out outcome
	conn, err := opt.dial(ctx, "udp", server)
	if err != nil {
		return out, fmt.Errorf("dns: open udp socket: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, maxReply+1)
	var (
		ids   []uint16
		sent  []time.Time
		lastR string // last rejection reason
		lastB []byte // bytes of the last rejected reply
	)
	for try := 0; try <= q.retries; try++ {
		if ctx.Err() != nil {
			break
		}
		id := opt.id()
		for tries := 0; tries < 8 && contains(ids, id); tries++ {
			id = opt.id()
		}
		pkt, err := q.pack(id)
		if err != nil {
			return out, fmt.Errorf("dns: pack query: %w", err)
		}
		start := opt.now()
		deadline := start.Add(q.timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		conn.SetDeadline(deadline)
		if ctx.Err() != nil { // cancelled while we set the deadline: undo it
			conn.SetDeadline(time.Unix(1, 0))
		}
		if _, err := conn.Write(pkt); err != nil {
			if try == 0 && !isTimeout(err) {
				return out, fmt.Errorf("dns: send query: %w", err)
			}
			if isTimeout(err) {
				break
			}
			out.err = "send: " + err.Error()
			return out, nil
		}
		ids = append(ids, id)
		sent = append(sent, start)
		out.tries++
		for {
			n, err := conn.Read(buf)
			now := opt.now()
			if err != nil {
				if isTimeout(err) {
					break // next try
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					out.err = ErrRefused
					return out, nil
				}
				out.err = "read: " + err.Error()
				return out, nil
			}
			raw := buf[:n]
			if n > maxReply {
				lastR, lastB = fmt.Sprintf("%soversized datagram (more than %d bytes)", errMalformedPrefix, maxReply), clone(raw[:maxReply])
				continue
			}
			v, m, why, i := check(raw, ids, &q)
			switch v {
			case accept:
				out.raw, out.msg, out.truncated = clone(raw), m, m.Truncated
				out.rtt = now.Sub(sent[i])
				return out, nil
			case malformed:
				out.raw, out.err = clone(raw), why
				out.rtt = now.Sub(sent[i])
				return out, nil
			default:
				lastR, lastB = why, clone(raw)
			}
		}
	}
	out.err = ErrTimeout
	if errors.Is(ctx.Err(), context.Canceled) {
		out.err = ErrCanceled
	}
	if lastR != "" {
		out.err, out.raw = lastR, lastB
	}
	return out, nil
}

// tcpExchange sends the query once over a new TCP connection. Every
// failure, including the connection itself, is recorded in the outcome.
func tcpExchange(ctx context.Context, server netip.AddrPort, q query, opt *Options) (outcome, error) {
	out := outcome{tries: 1}
	start := opt.now()
	deadline := start.Add(q.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := opt.dial(dctx, "tcp", server)
	if err != nil {
		switch {
		case isTimeout(err) || dctx.Err() != nil:
			out.err = ErrTimeout
		case errors.Is(err, syscall.ECONNREFUSED):
			out.err = ErrRefused
		default:
			out.err = "tcp connect: " + err.Error()
		}
		return out, nil
	}
	defer conn.Close()
	stop := context.AfterFunc(dctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(deadline)
	if dctx.Err() != nil {
		conn.SetDeadline(time.Unix(1, 0))
	}

	id := opt.id()
	pkt, err := q.pack(id)
	if err != nil {
		return out, fmt.Errorf("dns: pack query: %w", err)
	}
	frame := make([]byte, 2+len(pkt))
	binary.BigEndian.PutUint16(frame, uint16(len(pkt)))
	copy(frame[2:], pkt)
	sent := opt.now()
	if _, err := conn.Write(frame); err != nil {
		out.err = tcpError("send", err)
		return out, nil
	}
	// A TCP stream has one peer: the first framed message is the reply,
	// whatever it holds.
	var lb [2]byte
	if _, err := io.ReadFull(conn, lb[:]); err != nil {
		out.err = tcpError("read", err)
		return out, nil
	}
	n := int(binary.BigEndian.Uint16(lb[:]))
	raw := make([]byte, n)
	if _, err := io.ReadFull(conn, raw); err != nil {
		out.err = tcpError("read", err)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			out.err = fmt.Sprintf("%stcp frame of %d bytes cut short", errMalformedPrefix, n)
		}
		return out, nil
	}
	now := opt.now()
	out.rtt = now.Sub(sent)
	out.raw = raw
	v, m, why, _ := check(raw, []uint16{id}, &q)
	if v != accept {
		out.err = why
		return out, nil
	}
	out.msg = m
	return out, nil
}

func tcpError(step string, err error) string {
	switch {
	case isTimeout(err):
		return ErrTimeout
	case errors.Is(err, io.EOF):
		return errMalformedPrefix + "connection closed before a reply"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errMalformedPrefix + "connection closed mid-frame"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return ErrRefused
	}
	return "tcp " + step + ": " + err.Error()
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func contains(ids []uint16, id uint16) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
