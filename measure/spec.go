package measure

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Spec says how to run one measurement. Exactly the sub-spec matching Kind
// is used; a nil sub-spec means "all defaults". Zero fields mean the
// documented default, applied by [Spec.WithDefaults].
type Spec struct {
	Kind  Kind       `json:"kind"`
	Ping  *PingSpec  `json:"ping,omitempty"`
	Trace *TraceSpec `json:"trace,omitempty"`
	DNS   *DNSSpec   `json:"dns,omitempty"` // for KindDNS and KindIdentity
}

// PingSpec configures an ICMP echo measurement.
type PingSpec struct {
	Count      int `json:"count,omitempty"`       // echo requests; 0 means 3
	IntervalMS int `json:"interval_ms,omitempty"` // between requests; 0 means 1000
	Size       int `json:"size,omitempty"`        // ICMP payload bytes; 0 means 56
	TimeoutMS  int `json:"timeout_ms,omitempty"`  // wait for the last reply; 0 means 2000
}

// TraceSpec configures a Paris-style traceroute.
type TraceSpec struct {
	Proto        string `json:"proto,omitempty"`          // "icmp" or "udp"; "" means icmp
	FirstHop     int    `json:"first_hop,omitempty"`      // 0 means 1
	MaxHops      int    `json:"max_hops,omitempty"`       // 0 means 30
	ProbesPerHop int    `json:"probes_per_hop,omitempty"` // 0 means 3
	TimeoutMS    int    `json:"timeout_ms,omitempty"`     // per probe; 0 means 1500
	Port         int    `json:"port,omitempty"`           // UDP destination port; 0 means 33434
	Window       int    `json:"window,omitempty"`         // TTLs probed in parallel; 0 means 16
}

// DNSSpec configures a DNS query (KindDNS) or an identity measurement
// (KindIdentity, where QName/QClass/QType are ignored).
type DNSSpec struct {
	QName     string `json:"qname,omitempty"`      // "" means hostname.bind.
	QClass    string `json:"qclass,omitempty"`     // "IN" or "CH"; "" means CH
	QType     string `json:"qtype,omitempty"`      // any RR type mnemonic; "" means TXT
	Proto     string `json:"proto,omitempty"`      // "udp" (TCP fallback on truncation) or "tcp"; "" means udp
	Port      int    `json:"port,omitempty"`       // 0 means 53
	NSID      *bool  `json:"nsid,omitempty"`       // ask for EDNS NSID; nil means true
	Recurse   bool   `json:"rd,omitempty"`         // set RD
	UDPSize   int    `json:"udp_size,omitempty"`   // EDNS buffer size; 0 means 1232
	TimeoutMS int    `json:"timeout_ms,omitempty"` // per try; 0 means 2000
	Retries   int    `json:"retries,omitempty"`    // extra UDP tries after a timeout; 0 means none
}

// Limits that keep a schedule from turning a probe into a packet cannon and
// keep results bounded in size.
const (
	MaxPingCount     = 100
	MaxTraceHops     = 64
	MaxProbesPerHop  = 10
	MaxTimeout       = 30 * time.Second
	MinPingInterval  = 10 * time.Millisecond
	MaxPayloadSize   = 65000
	MaxRetries       = 5
	MaxDNSRawBytes   = 65535
	MaxPingReplies   = 2 * MaxPingCount // duplicates included
	MaxAnswers       = 256
	MaxIdentityBytes = 1024

	// MaxRTTMS is the ceiling of every RTT a result may carry (ping
	// replies and summaries, DNS exchanges, trace hops), in ms: twice
	// MaxTimeout, so that late trace replies and a TCP fallback after a
	// full UDP timeout still fit. Anything larger (or negative, or not a
	// number) is not a measurement; Validate rejects it so that reports
	// never see it and the real columns never turn it into Infinity.
	MaxRTTMS = 2 * float64(MaxTimeout/time.Millisecond)
	// MaxDurationMS bounds duration_ms, the whole measurement's run time:
	// a day, above the longest run any valid spec allows (a 64-hop trace,
	// one hop per window, 10 probes per hop at MaxTimeout, is 5.3 h;
	// TestMaxDurationCoversSpecs checks).
	MaxDurationMS = float64(24 * time.Hour / time.Millisecond)
)

// WithDefaults returns a copy of s with every zero field set to its default.
func (s Spec) WithDefaults() Spec {
	switch s.Kind {
	case KindPing:
		p := PingSpec{}
		if s.Ping != nil {
			p = *s.Ping
		}
		if p.Count == 0 {
			p.Count = 3
		}
		if p.IntervalMS == 0 {
			p.IntervalMS = 1000
		}
		if p.Size == 0 {
			p.Size = 56
		}
		if p.TimeoutMS == 0 {
			p.TimeoutMS = 2000
		}
		s.Ping = &p
	case KindTrace:
		t := TraceSpec{}
		if s.Trace != nil {
			t = *s.Trace
		}
		if t.Proto == "" {
			t.Proto = "icmp"
		}
		if t.FirstHop == 0 {
			t.FirstHop = 1
		}
		if t.MaxHops == 0 {
			t.MaxHops = 30
		}
		if t.ProbesPerHop == 0 {
			t.ProbesPerHop = 3
		}
		if t.TimeoutMS == 0 {
			t.TimeoutMS = 1500
		}
		if t.Port == 0 {
			t.Port = 33434
		}
		if t.Window == 0 {
			t.Window = 16
		}
		s.Trace = &t
	case KindDNS, KindIdentity:
		d := DNSSpec{}
		if s.DNS != nil {
			d = *s.DNS
		}
		if d.QName == "" {
			d.QName = "hostname.bind."
		}
		if d.QClass == "" {
			d.QClass = "CH"
		}
		if d.QType == "" {
			d.QType = "TXT"
		}
		if d.Proto == "" {
			d.Proto = "udp"
		}
		if d.Port == 0 {
			d.Port = 53
		}
		if d.NSID == nil {
			t := true
			d.NSID = &t
		}
		if d.UDPSize == 0 {
			d.UDPSize = 1232
		}
		if d.TimeoutMS == 0 {
			d.TimeoutMS = 2000
		}
		s.DNS = &d
	}
	return s
}

// Validate checks s (after defaults are applied) against the safety limits.
func (s Spec) Validate() error {
	if !s.Kind.Valid() {
		return fmt.Errorf("spec: unknown kind %q", s.Kind)
	}
	d := s.WithDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	timeout := func(name string, ms int) {
		if ms < 0 || time.Duration(ms)*time.Millisecond > MaxTimeout {
			bad("%s: %d ms is outside 1..%d", name, ms, MaxTimeout.Milliseconds())
		}
	}
	switch s.Kind {
	case KindPing:
		p := d.Ping
		if p.Count < 1 || p.Count > MaxPingCount {
			bad("ping.count: %d is outside 1..%d", p.Count, MaxPingCount)
		}
		if time.Duration(p.IntervalMS)*time.Millisecond < MinPingInterval {
			bad("ping.interval_ms: %d is below %d", p.IntervalMS, MinPingInterval.Milliseconds())
		}
		if p.Size < 0 || p.Size > MaxPayloadSize {
			bad("ping.size: %d is outside 0..%d", p.Size, MaxPayloadSize)
		}
		timeout("ping.timeout_ms", p.TimeoutMS)
	case KindTrace:
		t := d.Trace
		if t.Proto != "icmp" && t.Proto != "udp" {
			bad("trace.proto: %q is not icmp or udp", t.Proto)
		}
		if t.FirstHop < 1 || t.FirstHop > MaxTraceHops {
			bad("trace.first_hop: %d is outside 1..%d", t.FirstHop, MaxTraceHops)
		}
		if t.MaxHops < t.FirstHop || t.MaxHops > MaxTraceHops {
			bad("trace.max_hops: %d is outside first_hop..%d", t.MaxHops, MaxTraceHops)
		}
		if t.ProbesPerHop < 1 || t.ProbesPerHop > MaxProbesPerHop {
			bad("trace.probes_per_hop: %d is outside 1..%d", t.ProbesPerHop, MaxProbesPerHop)
		}
		if t.Port < 1 || t.Port > 65535 {
			bad("trace.port: %d is outside 1..65535", t.Port)
		}
		if t.Window < 1 || t.Window > MaxTraceHops {
			bad("trace.window: %d is outside 1..%d", t.Window, MaxTraceHops)
		}
		timeout("trace.timeout_ms", t.TimeoutMS)
	case KindDNS, KindIdentity:
		q := d.DNS
		if q.QClass != "IN" && q.QClass != "CH" {
			bad("dns.qclass: %q is not IN or CH", q.QClass)
		}
		if q.QType == "" || len(q.QType) > 16 || strings.ContainsAny(q.QType, " \t\n") {
			bad("dns.qtype: %q is not a type mnemonic", q.QType)
		}
		if len(q.QName) > 255 {
			bad("dns.qname: longer than 255 bytes")
		}
		if q.Proto != "udp" && q.Proto != "tcp" {
			bad("dns.proto: %q is not udp or tcp", q.Proto)
		}
		if q.Port < 1 || q.Port > 65535 {
			bad("dns.port: %d is outside 1..65535", q.Port)
		}
		if q.UDPSize < 512 || q.UDPSize > 65535 {
			bad("dns.udp_size: %d is outside 512..65535", q.UDPSize)
		}
		if q.Retries < 0 || q.Retries > MaxRetries {
			bad("dns.retries: %d is outside 0..%d", q.Retries, MaxRetries)
		}
		timeout("dns.timeout_ms", q.TimeoutMS)
	}
	if s.Kind != KindPing && s.Ping != nil || s.Kind != KindTrace && s.Trace != nil ||
		s.Kind != KindDNS && s.Kind != KindIdentity && s.DNS != nil {
		bad("spec: sub-spec does not match kind %q", s.Kind)
	}
	return errors.Join(errs...)
}

// Packets estimates how many packets one run of s sends, for the probe's
// local rate ceiling.
func (s Spec) Packets() int {
	d := s.WithDefaults()
	switch s.Kind {
	case KindPing:
		return d.Ping.Count
	case KindTrace:
		return (d.Trace.MaxHops - d.Trace.FirstHop + 1) * d.Trace.ProbesPerHop
	case KindDNS:
		return 1 + d.DNS.Retries
	case KindIdentity:
		return 2 * (1 + d.DNS.Retries)
	}
	return 1
}

// Timeout is an upper bound on how long one run of s may take; the agent
// puts a deadline of this plus a margin on every run.
func (s Spec) Timeout() time.Duration {
	d := s.WithDefaults()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	switch s.Kind {
	case KindPing:
		return ms(d.Ping.IntervalMS)*time.Duration(d.Ping.Count-1) + ms(d.Ping.TimeoutMS)
	case KindTrace:
		hops := d.Trace.MaxHops - d.Trace.FirstHop + 1
		windows := (hops + d.Trace.Window - 1) / d.Trace.Window
		return ms(d.Trace.TimeoutMS) * time.Duration(windows*d.Trace.ProbesPerHop+1)
	case KindDNS:
		return ms(d.DNS.TimeoutMS) * time.Duration(2+d.DNS.Retries) // UDP tries + TCP fallback
	case KindIdentity:
		return 2 * ms(d.DNS.TimeoutMS) * time.Duration(2+d.DNS.Retries)
	}
	return MaxTimeout
}
