package measure

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// codecResults cover every field of the wire format, each payload kind,
// empty and nil slices, and strings encoding/json escapes.
func codecResults() map[string]*Result {
	ts := time.Date(2026, 11, 21, 4, 59, 0, 123456789, time.UTC)
	id := NewUUIDv7(ts)
	return map[string]*Result{
		"ping": validPing(),
		"ping dups and empty replies": {V: Version, ID: id, Probe: "p-1", Measurement: "m", Target: "k-root", Kind: KindPing,
			Time: ts, Dst: "2001:db8::53", Src: "2001:db8::1", AF: 6, DurationMS: 3000.5,
			Ping: &PingResult{Mode: "dgram", Sent: 2, Received: 1, Duplicates: 1, Min: f(0), Max: f(-0.0), Replies: []PingReply{}}},
		"ping reply flags": {V: Version, ID: id, Measurement: "m", Kind: KindPing, Time: ts, Dst: "198.51.100.1", AF: 4,
			Ping: &PingResult{Sent: 1, Received: 1, Replies: []PingReply{{Seq: 1, RTT: 1e-7, Dup: true}, {RTT: 1e21}, {RTT: 123456.789e3}}}},
		"trace": {V: Version, ID: id, Measurement: "k/trace/4", Kind: KindTrace, Time: ts.In(time.FixedZone("", 3600)), Dst: "198.51.100.1", AF: 4,
			Trace: &TraceResult{Proto: "udp", Mode: "raw", Paris: true, FlowID: 65535, SrcPort: 33434, DstPort: 53, FirstHop: 1, MaxHops: 30,
				Reached: true, DestTTLInferred: true, Hops: []Hop{
					{TTL: 1, Probes: []HopProbe{{From: "198.51.100.1", RTT: 0.25, ReplyTTL: 64, ICMPType: 11, MPLS: []MPLSLabel{{Label: 1<<20 - 1, TC: 7, S: true, TTL: 255}, {}}}}},
					{TTL: 2, Probes: []HopProbe{{Timeout: true}, {From: "192.0.2.2", Late: true, ICMPCode: 3}}},
					{TTL: 3, Probes: nil},
					{TTL: 4, Probes: []HopProbe{}},
				}}},
		"trace nil hops": {V: Version, ID: id, Measurement: "m", Kind: KindTrace, Time: ts, Dst: "198.51.100.1", AF: 4,
			Trace: &TraceResult{Proto: "icmp", Mode: "recverr"}},
		"identity": {V: Version, ID: id, Probe: "p-\u00e9<&>", Measurement: "k-root/identity/4", Kind: KindIdentity, Time: ts, Dst: "198.18.53.53", AF: 4,
			DNS: &DNSResult{Server: "198.18.53.53:53", Exchanges: []DNSExchange{
				{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: 12.5, Rcode: "NOERROR", Flags: []string{"qr", "aa"},
					Answers: []RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", TTL: 4294967295, Data: `ns1 "quoted" \065 tab	nl` + "\n\x00\x1f\u2028\u2029\U0001F600"}},
					NSID:    "ams\\001", NSIDHex: "616d7301", Raw: []byte{0x12, 0x34, 0x84, 0, 0, 1, 0xff}},
				{QName: "id.server.", QClass: "CH", QType: "TXT", Proto: "tcp", TCPFallback: true, Tries: 2, Error: "timeout", Flags: []string{}, Raw: []byte{}},
			}, Identity: &Identity{HostnameBind: "ns1.ams", IDServer: "x", NSID: "ams"}}},
		"dns nil exchanges": {V: Version, ID: id, Measurement: "m", Kind: KindDNS, Time: ts, Dst: "198.51.100.1", AF: 4,
			DNS: &DNSResult{Identity: &Identity{}}},
		"error only": {V: Version, ID: id, Measurement: "m", Kind: KindDNS, Time: ts, Dst: "::ffff:198.51.100.1", AF: 4, Error: "no route to host"},
		"zero":       {},
		"http": {V: Version, ID: id, Measurement: "cf/http/4", Kind: KindHTTP, Time: ts, Dst: "198.18.53.53", AF: 4,
			HTTP: &HTTPResult{URL: "https://198.18.53.53/cdn-cgi/trace", Host: "one.one.one.one", Status: 200, Proto: "HTTP/1.1",
				ConnectMS: 1.25, TLSMS: 3.5, FirstByteMS: 9, TotalMS: 9.5e-7,
				Headers: []HTTPHeader{{Name: "cf-ray", Value: "8f1e2d3c4b5a6978-AMS"}, {Name: "server", Value: "<cloudflare & \"x\">"}},
				Body:    "fl=1\ncolo=AMS\n\u2028", BodyTruncated: true,
				TLS: &TLSInfo{Version: "TLS 1.3", Subject: "CN=cloudflare-dns.com", SANs: []string{"one.one.one.one", "*.cloudflare-dns.com"}}}},
		"http empty": {V: Version, ID: id, Measurement: "m", Kind: KindHTTP, Time: ts, Dst: "198.18.53.53", AF: 4,
			HTTP: &HTTPResult{Headers: []HTTPHeader{}, TLS: &TLSInfo{SANs: []string{}}, Error: "timeout"}},
		"ntp": {V: Version, ID: id, Measurement: "m", Kind: KindNTP, Time: ts, Dst: "2001:db8::123", AF: 6,
			NTP: &NTPResult{Server: "[2001:db8::123]:123", RTT: 0.5, Version: 4, Leap: 3, Stratum: 1, RefID: "GPS",
				RootDelayMS: 0.0152587890625, RootDispMS: -0.0, OffsetMS: -12.75, Kiss: "RATE", Error: "x"}},
		"ntp dispersion": {V: Version, ID: id, Measurement: "m", Kind: KindNTP, Time: ts, Dst: "198.51.100.1", AF: 4,
			NTP: &NTPResult{Server: "198.51.100.1:123", RTT: 12.25, Version: 4, Stratum: 2, RefID: "198.51.100.9", RootDispMS: 7.62939453125}},
		"ntp zero": {V: Version, ID: id, Measurement: "m", Kind: KindNTP, Time: ts, Dst: "198.51.100.1", AF: 4, NTP: &NTPResult{}},
	}
}

func TestAppendResultMatchesMarshal(t *testing.T) {
	for name, r := range codecResults() {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendResult([]byte("prefix"), r)
			if err != nil {
				t.Fatalf("AppendResult: %v", err)
			}
			if !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Errorf("got  %s\nwant prefix%s", got, want)
			}
			got, err = AppendResultWithoutRaw(nil, r)
			if err != nil {
				t.Fatalf("AppendResultWithoutRaw: %v", err)
			}
			if want := marshalWithoutRaw(t, r); !bytes.Equal(got, want) {
				t.Errorf("without raw: got  %s\nwant %s", got, want)
			}
		})
	}
}

func marshalWithoutRaw(t *testing.T, r *Result) []byte {
	t.Helper()
	c := *r
	if r.DNS != nil {
		d := *r.DNS
		d.Exchanges = append([]DNSExchange(nil), r.DNS.Exchanges...)
		for i := range d.Exchanges {
			d.Exchanges[i].Raw = nil
		}
		if r.DNS.Exchanges == nil {
			d.Exchanges = nil
		}
		c.DNS = &d
	}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendResultErrors(t *testing.T) {
	for name, mutate := range map[string]func(*Result){
		"nan":       func(r *Result) { r.DurationMS = math.NaN() },
		"inf reply": func(r *Result) { r.Ping.Replies[0].RTT = math.Inf(1) },
		"year":      func(r *Result) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		r := validPing()
		mutate(r)
		_, want := json.Marshal(r)
		got, err := AppendResult([]byte("x"), r)
		if want == nil || err == nil || err.Error() != want.Error() {
			t.Errorf("%s: got err %v, want %v", name, err, want)
		}
		if string(got) != "x" {
			t.Errorf("%s: got %q on error, want the input buffer", name, got)
		}
	}
}

// TestUnmarshalResultFastPath: what probes send (encoding/json.Marshal of a
// Result) never needs encoding/json to decode.
func TestUnmarshalResultFastPath(t *testing.T) {
	for name, r := range codecResults() {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var got Result
		if !unmarshalFast(b, &got) {
			t.Errorf("%s: fast path refused %s", name, b)
		}
		checkUnmarshal(t, b)
		// Pretty-printed is still canonical enough.
		var ind bytes.Buffer
		json.Indent(&ind, b, " ", "\t")
		if !unmarshalFast(ind.Bytes(), &got) {
			t.Errorf("%s: fast path refused indented %s", name, ind.Bytes())
		}
		checkUnmarshal(t, ind.Bytes())
	}
}

// unmarshalCases are inputs off the fast path, or at its edges; each must
// decode exactly as encoding/json decodes it.
var unmarshalCases = []string{
	`{"v":1,"V":2}`,                         // case-insensitive key
	`{"v":1,"v":2}`,                         // repeated key
	`{"ping":{"sent":1},"ping":{"size":2}}`, // repeated object key merges
	`{"\u0076":1}`,                          // escaped key
	`{"x":1,"v":1}`,                         // unknown key
	`{"v":null,"msm":null,"ping":null,"dns":null,"trace":null}`,
	`{"ping":{"min":null,"replies":null}}`,
	`{"trace":{"hops":null}}`,
	`{"trace":{"hops":[{"probes":null}]}}`,
	`{"dns":{"exchanges":[{"flags":null,"answers":[],"abuf":null}]}}`,
	`{"dns":{"exchanges":[{"abuf":""}]}}`,
	`{"dns":{"exchanges":[{"abuf":"!!"}]}}`,
	`{"dns":{"exchanges":[{"abuf":"AAE"}]}}`,
	`{"dns":{"exchanges":[{"abuf":[1,2]}]}}`,
	`{"msm":"a\u00e9\ud83d\ude00\ud800x\u2028\/\b\f\n\r\t\"\\"}`,
	`{"msm":"\ud800\u0041"}`,
	`{"msm":"\u12"}`,
	`{"msm":"\x"}`,
	"{\"msm\":\"\xff\"}", // invalid UTF-8: encoding/json replaces it
	"{\"msm\":\"a\tb\"}", // raw control character
	`{"v":1.0}`, `{"v":1e2}`, `{"v":-0}`, `{"v":01}`, `{"v":-}`, `{"v":9223372036854775808}`,
	`{"af":"4"}`, `{"v":true}`,
	`{"duration_ms":1e400}`, `{"duration_ms":1e-400}`, `{"duration_ms":-0.0}`, `{"duration_ms":.5}`, `{"duration_ms":1.}`, `{"duration_ms":1E+2}`,
	`{"trace":{"flow_id":65536}}`, `{"trace":{"flow_id":-1}}`, `{"trace":{"hops":[{"probes":[{"mpls":[{"tc":256}]}]}]}}`,
	`{"trace":{"paris":tru}}`, `{"trace":{"paris":"true"}}`,
	`{"id":"019a8f2e-0000-7000-8000-00000000000g"}`, `{"id":"019a8f2e\u002d0000-7000-8000-000000000001"}`, `{"id":null}`,
	`{"ts":"2026-11-21T04:59:00+01:00"}`, `{"ts":"2026-02-30T04:59:00Z"}`, `{"ts":"2026-11-21T04:59:00.1234567891Z"}`, `{"ts":null}`, `{"ts":"2026-11-21T04:59:00\u005a"}`,
	`{"kind":"ping"} `, `{"kind":"ping"} x`, `{"kind":"ping"}{}`, ` {"kind":"ping"}`, `{"kind":"ping",}`, `{,}`, `{}`, `[]`, `null`, ``, `{"kind"}`,
	`{"dns":{"exchanges":[{},]}}`, `{"dns":{"exchanges":[,]}}`, `{"dns":{"exchanges":{}}}`,
	`{"dns":{"identity":{"nsid":"a","NSID":"b"}}}`,
	`{"http":null,"ntp":null}`, `{"http":{"headers":null,"tls":null}}`, `{"http":{"headers":[{"name":"a","name":"b"}]}}`,
	`{"http":{"tls":{"sans":null}}}`, `{"http":{"status":1.5}}`, `{"http":{"headers":[{}],"body_truncated":false}}`,
	`{"ntp":{"stratum":-1,"leap":"0"}}`, `{"ntp":{"rtt":1,"rtt":2}}`, `{"ntp":{"Refid":"x"}}`,
}

func TestUnmarshalResultMatchesJSON(t *testing.T) {
	for _, in := range unmarshalCases {
		checkUnmarshal(t, []byte(in))
	}
}

// checkUnmarshal fails t unless UnmarshalResult and encoding/json agree on
// b, and, when b decodes, that AppendResult agrees with json.Marshal and
// decoding what it wrote gives the same result again.
func checkUnmarshal(t *testing.T, b []byte) {
	t.Helper()
	var want, got Result
	wantErr := json.Unmarshal(b, &want)
	gotErr := UnmarshalResult(b, &got)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: got err %v, want %v", b, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if !reflect.DeepEqual(&got, &want) {
		t.Fatalf("%q:\ngot  %#v\nwant %#v", b, got, want)
	}
	wantJSON, wantErr := json.Marshal(&want)
	gotJSON, gotErr := AppendResult(nil, &got)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: AppendResult err %v, json.Marshal err %v", b, gotErr, wantErr)
	}
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("%q: AppendResult\n%s\njson.Marshal\n%s", b, gotJSON, wantJSON)
	}
	if wantErr != nil {
		return
	}
	var again Result
	if !unmarshalFast(gotJSON, &again) {
		t.Fatalf("%q: fast path refused AppendResult's output %s", b, gotJSON)
	}
	if againJSON, _ := AppendResult(nil, &again); !bytes.Equal(againJSON, gotJSON) {
		t.Fatalf("%q: re-encoding changed\n%s\nto\n%s", b, gotJSON, againJSON)
	}
}

// FuzzUnmarshalResult: UnmarshalResult is encoding/json.Unmarshal, only
// faster, and AppendResult is encoding/json.Marshal.
func FuzzUnmarshalResult(f *testing.F) {
	for _, r := range codecResults() {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	for _, in := range unmarshalCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkUnmarshal(t, b)
	})
}

func BenchmarkUnmarshalResult(b *testing.B) {
	for _, name := range []string{"ping", "identity", "trace"} {
		line, _ := json.Marshal(codecResults()[name])
		b.Run(name+"/fast", func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				var r Result
				if err := UnmarshalResult(line, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding_json", func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				var r Result
				if err := json.Unmarshal(line, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendResult(b *testing.B) {
	for _, name := range []string{"ping", "identity", "trace"} {
		r := codecResults()[name]
		b.Run(name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = AppendResult(buf[:0], r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding_json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
