package measure

import (
	"strings"
	"testing"
	"time"
)

func TestSpecDefaultsValidate(t *testing.T) {
	for _, k := range Kinds {
		s := Spec{Kind: k}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: default spec invalid: %v", k, err)
		}
		if s.Packets() < 1 {
			t.Errorf("%s: Packets() = %d, want >= 1", k, s.Packets())
		}
		if d := s.Timeout(); d <= 0 || d > 5*time.Minute {
			t.Errorf("%s: Timeout() = %s out of range", k, d)
		}
	}
}

func TestSpecValidateRejects(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"ping count", Spec{Kind: KindPing, Ping: &PingSpec{Count: 1000}}, "ping.count"},
		{"ping flood", Spec{Kind: KindPing, Ping: &PingSpec{IntervalMS: 1}}, "ping.interval_ms"},
		{"trace proto", Spec{Kind: KindTrace, Trace: &TraceSpec{Proto: "tcp"}}, "trace.proto"},
		{"trace hops", Spec{Kind: KindTrace, Trace: &TraceSpec{MaxHops: 200}}, "trace.max_hops"},
		{"dns class", Spec{Kind: KindDNS, DNS: &DNSSpec{QClass: "HS"}}, "dns.qclass"},
		{"dns timeout", Spec{Kind: KindDNS, DNS: &DNSSpec{TimeoutMS: 600000}}, "dns.timeout_ms"},
		{"http scheme", Spec{Kind: KindHTTP, HTTP: &HTTPSpec{Scheme: "ftp"}}, "http.scheme"},
		{"http method", Spec{Kind: KindHTTP, HTTP: &HTTPSpec{Method: "POST"}}, "http.method"},
		{"http path", Spec{Kind: KindHTTP, HTTP: &HTTPSpec{Path: "cdn-cgi/trace"}}, "http.path"},
		{"http header name", Spec{Kind: KindHTTP, HTTP: &HTTPSpec{Headers: []string{"x-a: b"}}}, "http.headers"},
		{"http body", Spec{Kind: KindHTTP, HTTP: &HTTPSpec{BodyBytes: 1 << 20}}, "http.body_bytes"},
		{"ntp port", Spec{Kind: KindNTP, NTP: &NTPSpec{Port: 70000}}, "ntp.port"},
		{"ntp sub-spec on http", Spec{Kind: KindHTTP, NTP: &NTPSpec{}}, "does not match kind"},
		{"wrong sub-spec", Spec{Kind: KindPing, DNS: &DNSSpec{}}, "does not match kind"},
		{"unknown kind", Spec{Kind: "x"}, "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestSpecTimeoutCoversRun(t *testing.T) {
	s := Spec{Kind: KindPing, Ping: &PingSpec{Count: 5, IntervalMS: 200, TimeoutMS: 1000}}
	if got, want := s.Timeout(), 1800*time.Millisecond; got != want {
		t.Errorf("Timeout() = %s, want %s", got, want)
	}
}
