package measure

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Result is one measurement outcome in the versioned wire format. Loss and
// timeouts are results; Error is set only when the probe could not measure
// at all (no socket, bad address), and then the payload may be absent.
type Result struct {
	V           int       `json:"v"`               // wire-format version, [Version]
	ID          UUID      `json:"id"`              // probe-generated UUIDv7
	Probe       string    `json:"probe,omitempty"` // probe id; the collector sets it from the credential
	Measurement string    `json:"msm"`             // schedule measurement id this answers
	Target      string    `json:"target,omitempty"`
	Kind        Kind      `json:"kind"`
	Time        time.Time `json:"ts"`            // when the measurement started (UTC)
	Dst         string    `json:"dst"`           // address measured
	Src         string    `json:"src,omitempty"` // local address used, when known
	AF          int       `json:"af"`            // 4 or 6
	DurationMS  float64   `json:"duration_ms,omitempty"`
	Error       string    `json:"error,omitempty"`

	Ping  *PingResult  `json:"ping,omitempty"`
	Trace *TraceResult `json:"trace,omitempty"`
	DNS   *DNSResult   `json:"dns,omitempty"` // KindDNS and KindIdentity
	HTTP  *HTTPResult  `json:"http,omitempty"`
	NTP   *NTPResult   `json:"ntp,omitempty"`
}

// PingResult is the outcome of an ICMP echo measurement. RTTs are in
// milliseconds; the summary fields are absent when nothing came back.
type PingResult struct {
	Mode       string      `json:"mode"` // "raw" (CAP_NET_RAW) or "dgram" (unprivileged ICMP socket)
	Size       int         `json:"size"`
	Sent       int         `json:"sent"`
	Received   int         `json:"received"` // unique replies, duplicates excluded
	Duplicates int         `json:"dups,omitempty"`
	Min        *float64    `json:"min,omitempty"`
	Avg        *float64    `json:"avg,omitempty"`
	Median     *float64    `json:"median,omitempty"`
	Max        *float64    `json:"max,omitempty"`
	Replies    []PingReply `json:"replies,omitempty"`
}

// PingReply is one echo reply.
type PingReply struct {
	Seq int     `json:"seq"`
	RTT float64 `json:"rtt"` // ms
	TTL int     `json:"ttl,omitempty"`
	Dup bool    `json:"dup,omitempty"`
}

// TraceResult is the outcome of a traceroute.
type TraceResult struct {
	Proto    string `json:"proto"` // "icmp" or "udp"
	Mode     string `json:"mode"`  // "raw" or "recverr" (unprivileged UDP with IP_RECVERR)
	Paris    bool   `json:"paris"` // the flow identifier was constant for every probe
	FlowID   uint16 `json:"flow_id,omitempty"`
	SrcPort  int    `json:"sport,omitempty"`
	DstPort  int    `json:"dport,omitempty"`
	FirstHop int    `json:"first_hop"`
	MaxHops  int    `json:"max_hops"`
	Reached  bool   `json:"reached"` // the destination answered
	// DestTTLInferred: the destination answered only probes sent with
	// TTLs past a silent gap (its ICMP errors were rate limited), and the
	// last hop's TTL is its distance inferred from its replies' TTL; that
	// hop holds those replies.
	DestTTLInferred bool  `json:"dest_ttl_inferred,omitempty"`
	Hops            []Hop `json:"hops"`
}

// Hop is everything heard for one TTL.
type Hop struct {
	TTL    int        `json:"ttl"`
	Probes []HopProbe `json:"probes"`
}

// HopProbe is one probe's outcome at a hop: a reply, or Timeout.
type HopProbe struct {
	From     string      `json:"from,omitempty"`
	RTT      float64     `json:"rtt,omitempty"` // ms
	ReplyTTL int         `json:"reply_ttl,omitempty"`
	ICMPType int         `json:"icmp_type,omitempty"`
	ICMPCode int         `json:"icmp_code,omitempty"`
	MPLS     []MPLSLabel `json:"mpls,omitempty"`
	Late     bool        `json:"late,omitempty"` // arrived after its timeout
	Timeout  bool        `json:"timeout,omitempty"`
}

// MPLSLabel is one entry of an RFC 4950 ICMP extension label stack.
type MPLSLabel struct {
	Label uint32 `json:"label"`
	TC    uint8  `json:"tc"`
	S     bool   `json:"s"`
	TTL   uint8  `json:"ttl"`
}

// DNSResult is the outcome of a dns or identity measurement: one exchange
// per query asked, and for identity the identity strings found.
type DNSResult struct {
	Server    string        `json:"server"` // address:port asked
	Exchanges []DNSExchange `json:"exchanges"`
	Identity  *Identity     `json:"identity,omitempty"`
}

// DNSExchange is one query and its reply (or why there was none).
type DNSExchange struct {
	QName       string   `json:"qname"`
	QClass      string   `json:"qclass"`
	QType       string   `json:"qtype"`
	Proto       string   `json:"proto"`                  // transport of the final answer
	TCPFallback bool     `json:"tcp_fallback,omitempty"` // UDP reply was truncated, retried over TCP
	Tries       int      `json:"tries,omitempty"`
	RTT         float64  `json:"rtt,omitempty"` // ms
	Rcode       string   `json:"rcode,omitempty"`
	Flags       []string `json:"flags,omitempty"` // "qr","aa","tc","rd","ra","ad","cd"
	Answers     []RR     `json:"answers,omitempty"`
	NSID        string   `json:"nsid,omitempty"`     // decoded as text (non-printable bytes escaped)
	NSIDHex     string   `json:"nsid_hex,omitempty"` // raw NSID bytes in hex
	Raw         []byte   `json:"abuf,omitempty"`     // the reply exactly as received (base64 in JSON)
	Error       string   `json:"error,omitempty"`    // "timeout", "refused", "malformed reply: …"
}

// RR is one decoded resource record.
type RR struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Class string `json:"class"`
	TTL   uint32 `json:"ttl"`
	Data  string `json:"data"` // presentation form of the RDATA; TXT strings joined without quotes
}

// Identity holds the server identity strings an identity measurement found.
// An empty field means that query gave no usable answer.
type Identity struct {
	HostnameBind string `json:"hostname_bind,omitempty"`
	IDServer     string `json:"id_server,omitempty"`
	NSID         string `json:"nsid,omitempty"`
}

// Empty reports whether no identity was found at all.
func (i *Identity) Empty() bool {
	return i == nil || i.HostnameBind == "" && i.IDServer == "" && i.NSID == ""
}

// RTT returns the representative round-trip time of r in milliseconds (ping
// median, DNS reply time of the first answered exchange, trace RTT of the
// destination, HTTP TCP connect time, NTP exchange time), and false when
// there is none.
func (r *Result) RTT() (float64, bool) {
	switch {
	case r.Ping != nil && r.Ping.Median != nil:
		return *r.Ping.Median, true
	case r.DNS != nil:
		for _, e := range r.DNS.Exchanges {
			if e.Error == "" && e.RTT > 0 {
				return e.RTT, true
			}
		}
	case r.HTTP != nil:
		if r.HTTP.ConnectMS > 0 {
			return r.HTTP.ConnectMS, true
		}
	case r.NTP != nil:
		if r.NTP.Error == "" && r.NTP.RTT > 0 {
			return r.NTP.RTT, true
		}
	case r.Trace != nil && r.Trace.Reached && len(r.Trace.Hops) > 0:
		last := r.Trace.Hops[len(r.Trace.Hops)-1]
		for _, p := range last.Probes {
			if !p.Timeout {
				return p.RTT, true
			}
		}
	}
	return 0, false
}

// Validate checks that r is a well-formed result of the current version that
// is safe to store: known kind with the matching payload, a v7 id, a sane
// timestamp relative to now, a parseable destination, bounded sizes, every
// RTT and timing in 0..[MaxRTTMS] (duration in 0..[MaxDurationMS]), and
// no string PostgreSQL refuses to store (a NUL byte or invalid UTF-8):
// one such value used to fail the whole database batch it was in.
func (r *Result) Validate(now time.Time) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if field := r.badString(); field != "" {
		bad("%s: contains a NUL byte or invalid UTF-8", field)
	}
	if !inRange(r.DurationMS, MaxDurationMS) {
		bad("duration_ms: %g is outside 0..%g", r.DurationMS, MaxDurationMS)
	}
	if r.V != Version {
		bad("v: unsupported format version %d (want %d)", r.V, Version)
	}
	if r.ID.IsZero() {
		bad("id: missing")
	} else if r.ID.Version() != 7 {
		bad("id: UUID version %d, want 7", r.ID.Version())
	}
	if r.Measurement == "" || len(r.Measurement) > 200 {
		bad("msm: missing or longer than 200 bytes")
	}
	if !r.Kind.Valid() {
		bad("kind: unknown %q", r.Kind)
	}
	if r.Time.IsZero() {
		bad("ts: missing")
	} else if r.Time.After(now.Add(10*time.Minute)) || r.Time.Before(now.AddDate(-30, 0, 0)) {
		bad("ts: %s is in the future or implausibly old", r.Time.Format(time.RFC3339))
	}
	if a, err := netip.ParseAddr(r.Dst); err != nil {
		bad("dst: %q is not an IP address", r.Dst)
	} else if a.Unmap().Is4() && r.AF != 4 || a.Is6() && !a.Is4In6() && r.AF != 6 {
		bad("af: %d does not match dst %s", r.AF, r.Dst)
	}
	if len(r.Error) > 1024 {
		bad("error: longer than 1024 bytes")
	}
	payloads := 0
	for _, set := range []bool{r.Ping != nil, r.Trace != nil, r.DNS != nil, r.HTTP != nil, r.NTP != nil} {
		if set {
			payloads++
		}
	}
	if payloads > 1 {
		bad("result carries more than one payload")
	}
	if payloads == 0 && r.Error == "" {
		bad("result has neither a payload nor an error")
	}
	switch {
	case r.Ping != nil && r.Kind != KindPing,
		r.Trace != nil && r.Kind != KindTrace,
		r.DNS != nil && r.Kind != KindDNS && r.Kind != KindIdentity,
		r.HTTP != nil && r.Kind != KindHTTP,
		r.NTP != nil && r.Kind != KindNTP:
		bad("payload does not match kind %q", r.Kind)
	}
	if p := r.Ping; p != nil {
		if p.Sent < 0 || p.Sent > MaxPingCount || p.Received < 0 || p.Received > p.Sent || p.Duplicates < 0 {
			bad("ping: counts out of range (sent %d, received %d, dups %d)", p.Sent, p.Received, p.Duplicates)
		}
		if len(p.Replies) > MaxPingReplies {
			bad("ping: %d replies is more than %d", len(p.Replies), MaxPingReplies)
		}
		for _, rp := range p.Replies {
			if !inRange(rp.RTT, MaxRTTMS) {
				bad("ping: reply rtt %g is outside 0..%g ms", rp.RTT, MaxRTTMS)
				break
			}
		}
		for _, v := range []*float64{p.Min, p.Avg, p.Median, p.Max} {
			if v != nil && !inRange(*v, MaxRTTMS) {
				bad("ping: summary rtt %g is outside 0..%g ms", *v, MaxRTTMS)
				break
			}
		}
	}
	if t := r.Trace; t != nil {
		if len(t.Hops) > MaxTraceHops {
			bad("trace: %d hops is more than %d", len(t.Hops), MaxTraceHops)
		}
		for _, h := range t.Hops {
			if h.TTL < 1 || h.TTL > 255 || len(h.Probes) > MaxProbesPerHop*2 {
				bad("trace: hop ttl %d with %d probes out of range", h.TTL, len(h.Probes))
				break
			}
		}
	hops:
		for _, h := range t.Hops {
			for _, hp := range h.Probes {
				if !inRange(hp.RTT, MaxRTTMS) {
					bad("trace: hop %d rtt %g is outside 0..%g ms", h.TTL, hp.RTT, MaxRTTMS)
					break hops
				}
			}
		}
	}
	if d := r.DNS; d != nil {
		if len(d.Exchanges) > 8 {
			bad("dns: %d exchanges is more than 8", len(d.Exchanges))
		}
		for _, e := range d.Exchanges {
			if len(e.Raw) > MaxDNSRawBytes || len(e.Answers) > MaxAnswers {
				bad("dns: reply larger than limits")
				break
			}
		}
		for _, e := range d.Exchanges {
			if !inRange(e.RTT, MaxRTTMS) {
				bad("dns: exchange rtt %g is outside 0..%g ms", e.RTT, MaxRTTMS)
				break
			}
		}
		if id := d.Identity; id != nil && len(id.HostnameBind)+len(id.IDServer)+len(id.NSID) > MaxIdentityBytes {
			bad("dns: identity strings longer than %d bytes", MaxIdentityBytes)
		}
	}
	if h := r.HTTP; h != nil {
		n := 0
		for _, x := range h.Headers {
			n += len(x.Name) + len(x.Value)
		}
		if len(h.Headers) > MaxHTTPHeaders || n > MaxHTTPHeaderBytes {
			bad("http: %d headers of %d bytes is more than %d headers or %d bytes", len(h.Headers), n, MaxHTTPHeaders, MaxHTTPHeaderBytes)
		}
		if len(h.Body) > MaxHTTPBody {
			bad("http: body of %d bytes is more than %d", len(h.Body), MaxHTTPBody)
		}
		if len(h.URL) > 2048 {
			bad("http: url longer than 2048 bytes")
		}
		if t := h.TLS; t != nil && (len(t.SANs) > 256 || len(t.Subject) > 1024) {
			bad("http: certificate with more than 256 names or a subject over 1024 bytes")
		}
		if h.Status < 0 || h.Status > 999 {
			bad("http: status %d out of range", h.Status)
		}
	}
	if n := r.NTP; n != nil {
		if n.Stratum < 0 || n.Stratum > 255 || n.Leap < 0 || n.Leap > 3 || len(n.RefID) > 64 {
			bad("ntp: stratum %d, leap %d or refid out of range", n.Stratum, n.Leap)
		}
	}
	return errors.Join(errs...)
}

// inRange reports whether 0 <= v <= max; NaN is out of range.
func inRange(v, max float64) bool { return v >= 0 && v <= max }

// storable reports whether PostgreSQL can store s as text: valid UTF-8
// without NUL (text values cannot hold it, whatever the encoding).
func storable(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// badString returns the name of the first string field of r that is not
// [storable], or "". Every string of the wire format is listed: a field
// added to the format must be added here too (TestValidateCoversStrings
// checks that by reflection).
func (r *Result) badString() string {
	for _, f := range [...]struct {
		name, v string
	}{
		{"msm", r.Measurement}, {"probe", r.Probe}, {"target", r.Target}, {"kind", string(r.Kind)},
		{"dst", r.Dst}, {"src", r.Src}, {"error", r.Error},
	} {
		if !storable(f.v) {
			return f.name
		}
	}
	if p := r.Ping; p != nil && !storable(p.Mode) {
		return "ping.mode"
	}
	if t := r.Trace; t != nil {
		if !storable(t.Proto) || !storable(t.Mode) {
			return "trace"
		}
		for _, h := range t.Hops {
			for _, hp := range h.Probes {
				if !storable(hp.From) {
					return "trace.hops.from"
				}
			}
		}
	}
	if d := r.DNS; d != nil {
		if !storable(d.Server) {
			return "dns.server"
		}
		for _, e := range d.Exchanges {
			for _, f := range [...]string{e.QName, e.QClass, e.QType, e.Proto, e.Rcode, e.NSID, e.NSIDHex, e.Error} {
				if !storable(f) {
					return "dns.exchanges"
				}
			}
			for _, fl := range e.Flags {
				if !storable(fl) {
					return "dns.exchanges.flags"
				}
			}
			for _, a := range e.Answers {
				if !storable(a.Name) || !storable(a.Type) || !storable(a.Class) || !storable(a.Data) {
					return "dns.exchanges.answers"
				}
			}
		}
		if id := d.Identity; id != nil && (!storable(id.HostnameBind) || !storable(id.IDServer) || !storable(id.NSID)) {
			return "dns.identity"
		}
	}
	return ""
}
