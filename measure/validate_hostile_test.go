package measure

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullResults returns one valid result per payload kind with every string
// field, slice and pointer populated, so a reflective walk reaches every
// string of the wire format.
func fullResults() map[string]*Result {
	base := func(kind Kind) *Result {
		return &Result{V: Version, ID: NewUUIDv7(testNow), Probe: "p1", Measurement: "lab/" + string(kind), Target: "lab",
			Kind: kind, Time: testNow.Add(-time.Minute), Dst: "198.18.53.53", Src: "198.18.1.2", AF: 4, DurationMS: 12}
	}
	ping := base(KindPing)
	ping.Ping = validPing().Ping
	trace := base(KindTrace)
	trace.Trace = &TraceResult{Proto: "icmp", Mode: "raw", Paris: true, FirstHop: 1, MaxHops: 30, Reached: true,
		Hops: []Hop{{TTL: 1, Probes: []HopProbe{{From: "198.18.0.1", RTT: 1.5, MPLS: []MPLSLabel{{Label: 16}}}}}}}
	dns := base(KindIdentity)
	dns.DNS = &DNSResult{Server: "198.18.53.53:53", Exchanges: []DNSExchange{{
		QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: 2, Rcode: "NOERROR",
		Flags: []string{"qr"}, Answers: []RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: "ams1"}},
		NSID: "ams1", NSIDHex: "616d7331", Error: "x",
	}}, Identity: &Identity{HostnameBind: "ams1", IDServer: "ams1", NSID: "ams1"}}
	return map[string]*Result{"ping": ping, "trace": trace, "dns": dns}
}

// eachString calls f with every settable string reachable from v.
func eachString(v reflect.Value, path string, f func(path string, s reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			eachString(v.Elem(), path, f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				eachString(v.Field(i), path+"."+v.Type().Field(i).Name, f)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			eachString(v.Index(i), path+"[]", f)
		}
	case reflect.String:
		f(path, v)
	}
}

// TestValidateCoversStrings is the regression test for finding 1 at the
// validation layer: a NUL byte (e.g. "abc\u0000def" in
// dns.identity.hostname_bind or error) or invalid UTF-8 in ANY string of a
// result is rejected, because PostgreSQL refuses it and, before, it
// failed the whole COPY batch.
func TestValidateCoversStrings(t *testing.T) {
	for name, r := range fullResults() {
		if err := r.Validate(testNow); err != nil {
			t.Fatalf("%s: base result invalid: %v", name, err)
		}
		n := 0
		eachString(reflect.ValueOf(r), name, func(path string, s reflect.Value) {
			if strings.HasSuffix(path, ".Kind") {
				return // validated against the known kinds already
			}
			n++
			old := s.String()
			for _, bad := range []string{old + "\x00", "\xff" + old} {
				s.SetString(bad)
				err := r.Validate(testNow)
				if err == nil || !strings.Contains(err.Error(), "NUL byte or invalid UTF-8") {
					t.Errorf("%s = %q: Validate() = %v, want the NUL/UTF-8 rejection", path, bad, err)
				}
			}
			s.SetString(old)
		})
		if n < 5 {
			t.Errorf("%s: only %d strings walked", name, n)
		}
	}
}

// TestValidateRanges is the regression test for finding 2: every RTT and
// timing is range-checked (0..MaxRTTMS, duration 0..MaxDurationMS); NaN
// and infinities included. Before, median 1.7e308 or -50 was accepted.
func TestValidateRanges(t *testing.T) {
	rs := fullResults()
	tests := []struct {
		name   string
		r      *Result
		field  func(r *Result) *float64
		limit  float64
		substr string
	}{
		{"ping min", rs["ping"], func(r *Result) *float64 { return r.Ping.Min }, MaxRTTMS, "ping: summary rtt"},
		{"ping avg", rs["ping"], func(r *Result) *float64 { return r.Ping.Avg }, MaxRTTMS, "ping: summary rtt"},
		{"ping median", rs["ping"], func(r *Result) *float64 { return r.Ping.Median }, MaxRTTMS, "ping: summary rtt"},
		{"ping max", rs["ping"], func(r *Result) *float64 { return r.Ping.Max }, MaxRTTMS, "ping: summary rtt"},
		{"ping reply", rs["ping"], func(r *Result) *float64 { return &r.Ping.Replies[1].RTT }, MaxRTTMS, "ping: reply rtt"},
		{"trace hop", rs["trace"], func(r *Result) *float64 { return &r.Trace.Hops[0].Probes[0].RTT }, MaxRTTMS, "trace: hop 1 rtt"},
		{"dns exchange", rs["dns"], func(r *Result) *float64 { return &r.DNS.Exchanges[0].RTT }, MaxRTTMS, "dns: exchange rtt"},
		{"duration", rs["dns"], func(r *Result) *float64 { return &r.DurationMS }, MaxDurationMS, "duration_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.field(tt.r)
			old := *p
			defer func() { *p = old }()
			for _, v := range []float64{0, tt.limit} {
				*p = v
				if err := tt.r.Validate(testNow); err != nil {
					t.Errorf("%g: Validate() = %v, want nil (in range)", v, err)
				}
			}
			for _, v := range []float64{-50, -0.001, tt.limit + 0.001, 1.7e308, math.Inf(1), math.NaN()} {
				*p = v
				if err := tt.r.Validate(testNow); err == nil || !strings.Contains(err.Error(), tt.substr) {
					t.Errorf("%g: Validate() = %v, want error containing %q", v, err, tt.substr)
				}
			}
		})
	}
}

// TestMaxDurationCoversSpecs: the longest run any valid spec allows fits
// under MaxDurationMS, so an honest probe's duration_ms is never refused.
func TestMaxDurationCoversSpecs(t *testing.T) {
	maxMS := int(MaxTimeout / time.Millisecond)
	worst := []Spec{
		{Kind: KindTrace, Trace: &TraceSpec{FirstHop: 1, MaxHops: MaxTraceHops, ProbesPerHop: MaxProbesPerHop, TimeoutMS: maxMS, Window: 1}},
		{Kind: KindPing, Ping: &PingSpec{Count: MaxPingCount, IntervalMS: maxMS, TimeoutMS: maxMS}},
		{Kind: KindDNS, DNS: &DNSSpec{TimeoutMS: maxMS, Retries: MaxRetries}},
		{Kind: KindIdentity, DNS: &DNSSpec{TimeoutMS: maxMS, Retries: MaxRetries}},
	}
	for _, s := range worst {
		if err := s.Validate(); err != nil {
			t.Logf("%s: %v (bound still checked)", s.Kind, err)
		}
		if d := float64(s.Timeout() / time.Millisecond); d > MaxDurationMS {
			t.Errorf("%s: a run may take %g ms, more than MaxDurationMS %g", s.Kind, d, MaxDurationMS)
		}
	}
}
