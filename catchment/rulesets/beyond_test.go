package rulesets

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// TestShippedHTTPHeaderRules runs the shipped HTTP rules over header lines
// others recorded from the real services (testdata/identity, sources in
// its README): each line names the site it must give, or "-" for none.
func TestShippedHTTPHeaderRules(t *testing.T) {
	services, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for file, service := range map[string]string{
		"cloudflare-headers.txt": "cloudflare-http",
		"fastly-headers.txt":     "fastly",
		"cloudfront-headers.txt": "cloudfront",
	} {
		s := Find(services, service)
		if s == nil {
			t.Fatalf("service %q not shipped", service)
		}
		lines := fixtureLines(t, "testdata/identity/"+file)
		if len(lines) < 3 {
			t.Fatalf("%s: only %d lines", file, len(lines))
		}
		for _, l := range lines {
			want, hdr, _ := strings.Cut(l, " ")
			name, value, ok := strings.Cut(hdr, ": ")
			if !ok {
				t.Fatalf("%s: bad line %q", file, l)
			}
			r := &measure.Result{Kind: measure.KindHTTP, HTTP: &measure.HTTPResult{Status: 200,
				Headers: []measure.HTTPHeader{{Name: "server", Value: "x"}, {Name: strings.ToLower(name), Value: value}}}}
			m := s.Identifier().IdentifyResult(r)
			if want == "-" {
				want = ""
			}
			if m.Site != want {
				t.Errorf("%s %q: got site %q, want %q", service, hdr, m.Site, want)
			}
			if want != "" && m.Source != "http_header:"+strings.ToLower(name) {
				t.Errorf("%s %q: got source %q, want http_header:%s", service, hdr, m.Source, strings.ToLower(name))
			}
		}
	}
}

func TestShippedCloudflareTraceBody(t *testing.T) {
	services, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile("testdata/identity/cloudflare-trace.txt")
	if err != nil {
		t.Fatal(err)
	}
	s := Find(services, "cloudflare-http")
	r := &measure.Result{Kind: measure.KindHTTP, HTTP: &measure.HTTPResult{Status: 200, Body: string(body)}}
	if m := s.Identifier().IdentifyResult(r); m.Site != "ams" || m.Source != catchment.SourceHTTPBody {
		t.Errorf("got %+v, want site ams from http_body", m)
	}
	// A header beats the body: http_header comes first in the order.
	r.HTTP.Headers = []measure.HTTPHeader{{Name: "cf-ray", Value: "838b4de849121c7b-CDG"}}
	if m := s.Identifier().IdentifyResult(r); m.Site != "cdg" || m.Source != "http_header:cf-ray" {
		t.Errorf("got %+v, want site cdg from http_header:cf-ray", m)
	}
	// "colo=" must start a line: a value elsewhere names nothing.
	r.HTTP.Headers, r.HTTP.Body = nil, "uag=colo=AMS\n"
	if m := s.Identifier().IdentifyResult(r); m.State != catchment.StateUnidentified {
		t.Errorf("got %+v, want unidentified", m)
	}
}

func TestShippedGoogleEgress(t *testing.T) {
	services, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	s := Find(services, "google-dns")
	var answers []measure.RR
	for _, l := range fixtureLines(t, "testdata/identity/google-myaddr.txt") {
		f := strings.SplitN(l, "\t", 4)
		answers = append(answers, measure.RR{Name: "o-o.myaddr.l.google.com.", Type: f[2], Class: f[1], TTL: 60, Data: f[3]})
	}
	r := &measure.Result{Kind: measure.KindDNS, DNS: &measure.DNSResult{Exchanges: []measure.DNSExchange{
		{QName: "o-o.myaddr.l.google.com.", QClass: "IN", QType: "TXT", Rcode: "NOERROR", Answers: answers}}}}
	m := s.Identifier().IdentifyResult(r)
	if m.Site != "gru" || m.Source != catchment.SourceEgressAddr || m.Identity != "64.233.162.77" {
		t.Errorf("got %+v, want gru from egress_addr 64.233.162.77", m)
	}
	answers[0].Data = `"8.8.8.8"`
	if m := s.Identifier().IdentifyResult(r); m.State != catchment.StateUnidentified || m.Identity != "8.8.8.8" {
		t.Errorf("address outside every prefix: got %+v, want unidentified with the address", m)
	}
}

func fixtureLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// FuzzShippedHTTPRules: any header value or body, through every shipped
// service's rules, gives a valid site code or none, and an identity string
// within bounds.
func FuzzShippedHTTPRules(f *testing.F) {
	f.Add("cf-ray", "838b4de849121c7b-AMS", "fl=1\ncolo=AMS\n")                   // recorded Cloudflare answer
	f.Add("x-served-by", "cache-lga21984-LGA, cache-pdx12345-PDX", "")            // Fastly with shielding
	f.Add("x-amz-cf-pop", "SIN5-C1", "")                                          // CloudFront
	f.Add("cf-ray", "-\xff\x00", strings.Repeat("colo=ÄÖÜ\n", 100))               // invalid UTF-8, long body
	f.Add("x-served-by", strings.Repeat("cache-a1-AAA, ", 50)+"cache-b2-BBB", "") // long list
	services, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, value, body string) {
		r := &measure.Result{Kind: measure.KindHTTP, HTTP: &measure.HTTPResult{Status: 200, Body: body,
			Headers: []measure.HTTPHeader{{Name: strings.ToLower(name), Value: value}}}}
		for _, s := range services {
			m := s.Identifier().IdentifyResult(r)
			if m.State == catchment.StateSite && (m.Site == "" || len(m.Site) > 32 || strings.ToLower(m.Site) != m.Site) {
				t.Fatalf("%s: bad site %q", s.Name, m.Site)
			}
			if len(m.Identity) > 256 {
				t.Fatalf("%s: identity of %d bytes", s.Name, len(m.Identity))
			}
		}
	})
}
