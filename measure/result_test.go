package measure

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }

func validPing() *Result {
	return &Result{
		V: Version, ID: NewUUIDv7(testNow), Measurement: "lab/ping/4", Kind: KindPing,
		Time: testNow.Add(-time.Minute), Dst: "198.18.53.53", AF: 4,
		Ping: &PingResult{Mode: "raw", Size: 56, Sent: 3, Received: 2, Min: f(1), Avg: f(2), Median: f(2), Max: f(3),
			Replies: []PingReply{{Seq: 0, RTT: 1, TTL: 60}, {Seq: 1, RTT: 3, TTL: 60}}},
	}
}

func TestResultValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(r *Result)
		wantErr string // substring; "" = valid
	}{
		{"valid", func(r *Result) {}, ""},
		{"error only is valid", func(r *Result) { r.Ping = nil; r.Error = "no route" }, ""},
		{"v6 address", func(r *Result) { r.Dst = "2001:db8:53::53"; r.AF = 6 }, ""},
		{"wrong version", func(r *Result) { r.V = 2 }, "v: unsupported"},
		{"zero id", func(r *Result) { r.ID = UUID{} }, "id: missing"},
		{"v4 uuid", func(r *Result) { r.ID[6] = 0x40 }, "want 7"},
		{"unknown kind", func(r *Result) { r.Kind = "smtp" }, "kind: unknown"},
		{"future", func(r *Result) { r.Time = testNow.Add(time.Hour) }, "ts:"},
		{"bad dst", func(r *Result) { r.Dst = "example.com" }, "dst:"},
		{"af mismatch", func(r *Result) { r.AF = 6 }, "af:"},
		{"payload kind mismatch", func(r *Result) { r.Kind = KindDNS }, "does not match kind"},
		{"two payloads", func(r *Result) { r.DNS = &DNSResult{} }, "more than one payload"},
		{"no payload", func(r *Result) { r.Ping = nil }, "neither a payload"},
		{"received > sent", func(r *Result) { r.Ping.Received = 9 }, "counts out of range"},
		{"missing msm", func(r *Result) { r.Measurement = "" }, "msm:"},
		{"http payload", func(r *Result) {
			r.Kind, r.Ping = KindHTTP, nil
			r.HTTP = &HTTPResult{URL: "https://198.18.53.53/", Status: 200, Headers: []HTTPHeader{{Name: "cf-ray", Value: "x-AMS"}}}
		}, ""},
		{"http payload on ping", func(r *Result) { r.HTTP = &HTTPResult{}; r.Ping = nil }, "does not match kind"},
		{"http huge body", func(r *Result) {
			r.Kind, r.Ping = KindHTTP, nil
			r.HTTP = &HTTPResult{Body: strings.Repeat("x", MaxHTTPBody+1)}
		}, "http: body"},
		{"http too many headers", func(r *Result) {
			r.Kind, r.Ping = KindHTTP, nil
			r.HTTP = &HTTPResult{Headers: make([]HTTPHeader, MaxHTTPHeaders+1)}
		}, "http: 65 headers"},
		{"ntp payload", func(r *Result) { r.Kind, r.Ping = KindNTP, nil; r.NTP = &NTPResult{Stratum: 2, RefID: "192.0.2.1"} }, ""},
		{"ntp bad stratum", func(r *Result) { r.Kind, r.Ping = KindNTP, nil; r.NTP = &NTPResult{Stratum: 256} }, "ntp: stratum"},
		{"huge trace", func(r *Result) {
			r.Kind, r.Ping = KindTrace, nil
			r.Trace = &TraceResult{Hops: make([]Hop, 100)}
		}, "hops is more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validPing()
			tt.mutate(r)
			err := r.Validate(testNow)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	r := validPing()
	r.Kind, r.Ping = KindIdentity, nil
	r.DNS = &DNSResult{Server: "198.18.53.53:53", Exchanges: []DNSExchange{{
		QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: 1.5, Rcode: "NOERROR",
		Raw: []byte{0xde, 0xad, 0xbe, 0xef}, NSID: "ams1", NSIDHex: "616d7331",
	}}, Identity: &Identity{HostnameBind: "ams1.lab", NSID: "ams1"}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"abuf":"3q2+7w=="`) {
		t.Errorf("raw reply not base64 in JSON: %s", b)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(testNow); err != nil {
		t.Fatalf("round-tripped result invalid: %v", err)
	}
	if back.ID != r.ID || string(back.DNS.Exchanges[0].Raw) != string(r.DNS.Exchanges[0].Raw) || back.DNS.Identity.NSID != "ams1" {
		t.Errorf("round trip lost data: %+v", back.DNS)
	}
	if rtt, ok := back.RTT(); !ok || rtt != 1.5 {
		t.Errorf("RTT() = %v, %v; want 1.5, true", rtt, ok)
	}
}

// FuzzResultDecode feeds arbitrary bytes through the same decode+validate
// path the collector uses: it must never panic.
func FuzzResultDecode(f *testing.F) {
	good, _ := json.Marshal(validPing())
	f.Add(good)
	f.Add([]byte(`{"v":1,"id":"00000000-0000-7000-8000-000000000000","kind":"dns","dns":{"exchanges":[{"abuf":"!!"}]}}`))
	f.Add([]byte(`{"v":1,"trace":{"hops":[{"ttl":-1,"probes":null}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Result
		if json.Unmarshal(b, &r) != nil {
			return
		}
		_ = r.Validate(testNow)
		_, _ = r.RTT()
	})
}
