package main

import (
	"bytes"
	"flag"
	"github.com/anycatch/anycatch/catchment/rulesets"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func fp(v float64) *float64 { return &v }

var when = time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)

func envelope(kind measure.Kind, target, dst string, af int) measure.Result {
	return measure.Result{V: 1, ID: measure.NewUUIDv7(when), Measurement: "cli/" + string(kind), Target: target,
		Kind: kind, Time: when, Dst: dst, AF: af, DurationMS: 2012.5}
}

// goldens are fixed results, one per report shape worth pinning.
func goldens() map[string]struct {
	render func(io.Writer, *measure.Result)
	r      measure.Result
} {
	type g = struct {
		render func(io.Writer, *measure.Result)
		r      measure.Result
	}
	out := map[string]g{}

	r := envelope(measure.KindPing, "k.root-servers.net", "193.0.14.129", 4)
	r.Ping = &measure.PingResult{Mode: "raw", Size: 56, Sent: 3, Received: 2, Duplicates: 1,
		Min: fp(12.1), Avg: fp(12.2225), Median: fp(12.2225), Max: fp(12.345),
		Replies: []measure.PingReply{{Seq: 1, RTT: 12.345, TTL: 57}, {Seq: 1, RTT: 12.9, TTL: 57, Dup: true}, {Seq: 3, RTT: 12.1, TTL: 57}}}
	out["ping"] = g{renderPing, r}

	r = envelope(measure.KindPing, "", "2001:7fd::1", 6)
	r.Ping = &measure.PingResult{Mode: "dgram", Size: 56, Sent: 3}
	out["ping-loss"] = g{renderPing, r}

	r = envelope(measure.KindTrace, "k.root-servers.net", "193.0.14.129", 4)
	r.Trace = &measure.TraceResult{Proto: "icmp", Mode: "raw", Paris: true, FlowID: 4660, FirstHop: 1, MaxHops: 30, Reached: true,
		Hops: []measure.Hop{
			{TTL: 1, Probes: []measure.HopProbe{{From: "198.51.100.1", RTT: 0.512, ICMPType: 11}, {From: "198.51.100.1", RTT: 0.498, ICMPType: 11}, {From: "198.51.100.1", RTT: 0.501, ICMPType: 11}}},
			{TTL: 2, Probes: []measure.HopProbe{
				{From: "198.51.100.1", RTT: 3.201, ICMPType: 11, MPLS: []measure.MPLSLabel{{Label: 24001, S: true, TTL: 1}}},
				{Timeout: true},
				{From: "198.51.100.9", RTT: 3.4, ICMPType: 11, MPLS: []measure.MPLSLabel{{Label: 24001, S: true, TTL: 1}}, Late: true}}},
			{TTL: 3, Probes: []measure.HopProbe{{Timeout: true}, {Timeout: true}, {Timeout: true}}},
			{TTL: 4, Probes: []measure.HopProbe{{From: "193.0.14.129", RTT: 12.1}, {From: "193.0.14.129", RTT: 12.0}, {From: "193.0.14.129", RTT: 12.3}}},
		}}
	out["trace"] = g{renderTrace, r}

	r = envelope(measure.KindTrace, "", "2001:db8::53", 6)
	r.Trace = &measure.TraceResult{Proto: "udp", Mode: "recverr", Paris: true, FlowID: 7, DstPort: 33434, FirstHop: 1, MaxHops: 2,
		Hops: []measure.Hop{
			{TTL: 1, Probes: []measure.HopProbe{{From: "2001:db8::1", RTT: 1.5, ICMPType: 3}}},
			{TTL: 2, Probes: []measure.HopProbe{{From: "2001:db8::2", RTT: 2.5, ICMPType: 1, ICMPCode: 3}}},
		}}
	out["trace-unreached"] = g{renderTrace, r}

	r = envelope(measure.KindDNS, "k.root-servers.net", "193.0.14.129", 4)
	r.DNS = &measure.DNSResult{Server: "193.0.14.129:53", Exchanges: []measure.DNSExchange{{
		QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", Tries: 1, RTT: 1.234, Rcode: "NOERROR",
		Flags: []string{"qr", "aa"}, NSID: `ams1\x0a`, NSIDHex: "616d73310a", Raw: make([]byte, 83),
		Answers: []measure.RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: `ns1.ams.k.ripe.net`}},
	}}}
	out["dns"] = g{renderDNS, r}

	r = envelope(measure.KindDNS, "", "2001:db8::53", 6)
	r.DNS = &measure.DNSResult{Server: "[2001:db8::53]:5353", Exchanges: []measure.DNSExchange{{
		QName: "www.example.test.", QClass: "IN", QType: "A", Proto: "tcp", TCPFallback: true, Tries: 2, RTT: 20.5, Rcode: "NOERROR",
		Flags: []string{"qr", "aa", "rd"}, Raw: make([]byte, 120),
		Answers: []measure.RR{{Name: "www.example.test.", Type: "A", Class: "IN", TTL: 300, Data: "198.51.100.1"},
			{Name: "www.example.test.", Type: "A", Class: "IN", TTL: 300, Data: "198.51.100.2"}},
	}}}
	out["dns-fallback"] = g{renderDNS, r}

	r = envelope(measure.KindDNS, "", "198.51.100.53", 4)
	r.DNS = &measure.DNSResult{Server: "198.51.100.53:53", Exchanges: []measure.DNSExchange{{
		QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", Tries: 3, Error: "timeout"}}}
	out["dns-timeout"] = g{renderDNS, r}

	r = envelope(measure.KindIdentity, "k.root-servers.net", "193.0.14.129", 4)
	r.DNS = &measure.DNSResult{Server: "193.0.14.129:53", Identity: &measure.Identity{HostnameBind: "ns1.ams.k.ripe.net", IDServer: "ams1", NSID: "ams1"},
		Exchanges: []measure.DNSExchange{
			{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", Tries: 1, RTT: 1.234, Rcode: "NOERROR", NSID: "ams1", NSIDHex: "616d7331",
				Answers: []measure.RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: "ns1.ams.k.ripe.net"}}},
			{QName: "id.server.", QClass: "CH", QType: "TXT", Proto: "tcp", TCPFallback: true, Tries: 2, RTT: 2.5, Rcode: "NOERROR", NSID: "ams1", NSIDHex: "616d7331",
				Answers: []measure.RR{{Name: "id.server.", Type: "TXT", Class: "CH", Data: "ams1"}}},
		}}
	out["identity"] = g{renderIdentity, r}

	// The shipped K-root rules name the site of a current instance name,
	// and say so plainly when an answer matches none of them.
	shipped, err := rulesets.Default()
	if err != nil {
		panic(err)
	}
	withRules := func(w io.Writer, r *measure.Result) { renderIdentityWith(w, r, shipped) }
	out["identity-unmapped"] = g{withRules, r}
	r2 := r
	d2 := *r.DNS
	d2.Identity = &measure.Identity{HostnameBind: "ns1.fi-hel.k.ripe.net", NSID: "ams1"}
	r2.DNS = &d2
	out["identity-site"] = g{withRules, r2}

	r = envelope(measure.KindIdentity, "", "127.0.0.1", 4)
	r.DNS = &measure.DNSResult{Server: "127.0.0.1:5300", Identity: &measure.Identity{},
		Exchanges: []measure.DNSExchange{
			{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", Tries: 1, RTT: 0.1, Rcode: "REFUSED"},
			{QName: "id.server.", QClass: "CH", QType: "TXT", Proto: "udp", Tries: 2, Error: "timeout"},
		}}
	out["identity-hidden"] = g{renderIdentity, r}

	// http and ntp name the site the way identity does, with the source.
	// Header values as recorded from Cloudflare (catchment/rulesets/testdata/identity).
	httpWith := func(w io.Writer, r *measure.Result) { renderHTTP(w, r, shipped) }
	r = envelope(measure.KindHTTP, "", "1.1.1.1", 4)
	r.HTTP = &measure.HTTPResult{URL: "https://one.one.one.one/cdn-cgi/trace", Host: "one.one.one.one", Status: 200, Proto: "HTTP/1.1",
		ConnectMS: 4.25, TLSMS: 12.5, FirstByteMS: 20.125, TotalMS: 20.5,
		Headers: []measure.HTTPHeader{{Name: "cf-ray", Value: "838b4de849121c7b-AMS"}, {Name: "server", Value: "cloudflare"}},
		Body:    "fl=202f30\nh=one.one.one.one\ncolo=AMS\nhttp=http/1.1\n",
		TLS:     &measure.TLSInfo{Version: "TLS 1.3", Subject: "CN=cloudflare-dns.com", SANs: []string{"cloudflare-dns.com", "one.one.one.one", "1.1.1.1"}}}
	out["http-site"] = g{httpWith, r}
	r = envelope(measure.KindHTTP, "cdn.example.net", "1.1.1.1", 4)
	r.HTTP = &measure.HTTPResult{URL: "https://cdn.example.net/", Host: "cdn.example.net", ConnectMS: 4.25, TotalMS: 15,
		Error: "tls: certificate: x509: certificate is valid for cloudflare-dns.com, not cdn.example.net",
		TLS:   &measure.TLSInfo{Version: "TLS 1.3", Subject: "CN=cloudflare-dns.com", SANs: []string{"cloudflare-dns.com"}}}
	out["http-tls-error"] = g{httpWith, r}

	// Google Public DNS names no site in CHAOS; its egress address does.
	// The TXT answer as published (see catchment/rulesets/testdata/identity/google-myaddr.txt).
	r = envelope(measure.KindDNS, "", "8.8.8.8", 4)
	r.DNS = &measure.DNSResult{Server: "8.8.8.8:53", Exchanges: []measure.DNSExchange{{
		QName: "o-o.myaddr.l.google.com.", QClass: "IN", QType: "TXT", Proto: "udp", Tries: 1, RTT: 14.5, Rcode: "NOERROR",
		Flags: []string{"qr", "rd", "ra"},
		Answers: []measure.RR{{Name: "o-o.myaddr.l.google.com.", Type: "TXT", Class: "IN", TTL: 60, Data: "64.233.162.77"},
			{Name: "o-o.myaddr.l.google.com.", Type: "TXT", Class: "IN", TTL: 60, Data: "edns0-client-subnet 203.0.113.0/24"}},
	}}}
	out["dns-google-egress"] = g{func(w io.Writer, r *measure.Result) { renderDNSWith(w, r, shipped) }, r}

	ntpRules, err := rulesets.Parse([]byte(`services: [{name: lab-ntp, rules: [{source: ntp_refid, match: regex, pattern: '^(?P<site>[A-Z]{3})$', note: "lab NTP server refids"}]}]`))
	if err != nil {
		panic(err)
	}
	ntpWith := func(w io.Writer, r *measure.Result) { renderNTP(w, r, ntpRules) }
	r = envelope(measure.KindNTP, "", "198.18.123.123", 4)
	r.NTP = &measure.NTPResult{Server: "198.18.123.123:123", RTT: 30.25, Version: 4, Stratum: 1, RefID: "AMS", RootDispMS: 0.244, OffsetMS: -0.5}
	out["ntp-site"] = g{ntpWith, r}
	r = envelope(measure.KindNTP, "", "198.18.123.123", 4)
	r.NTP = &measure.NTPResult{Server: "198.18.123.123:123", RTT: 30.25, Version: 4, Leap: 3, RefID: "RATE", Kiss: "RATE"}
	out["ntp-kiss"] = g{ntpWith, r}
	return out
}

func TestGolden(t *testing.T) {
	for name, g := range goldens() {
		t.Run(name, func(t *testing.T) {
			if err := g.r.Validate(when); err != nil {
				t.Fatalf("fixture is not a valid result: %v", err)
			}
			var buf bytes.Buffer
			g.render(&buf, &g.r)
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s output differs from %s (go test -update to accept)\n--- got ---\n%s\n--- want ---\n%s", name, path, buf.Bytes(), want)
			}
		})
	}
}
