package rulesets

import (
	"strings"
	"testing"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// faqList is the start of Google's Public DNS FAQ egress list (stored copy
// of code.google.com/speed/public-dns/faq.html, about 2010), in its
// "prefix code" order, with the one prefix it lists twice.
const faqList = `64.233.162.0/24 gru
64.233.168.0/24 iad
74.125.16.64/26 tpe
74.125.17.0/24 bru
74.125.17.0/24 fra
`

func TestParseEgressTable(t *testing.T) {
	entries, conflicts, err := ParseEgressTable(strings.NewReader(faqList + "\n# comment\n\"ams 2001:4860:1000::/48\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(conflicts) != 1 || conflicts[0].String() != "74.125.17.0/24" {
		t.Errorf("conflicts: got %v, want 74.125.17.0/24", conflicts)
	}
	got := []string{}
	for _, e := range entries {
		got = append(got, e.Prefix.String()+" "+e.Site)
	}
	want := "64.233.162.0/24 gru|64.233.168.0/24 iad|74.125.16.64/26 tpe|2001:4860:1000::/48 ams"
	if strings.Join(got, "|") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	idf, err := catchment.NewIdentifier(nil, EgressRules(entries, "test"))
	if err != nil {
		t.Fatal(err)
	}
	r := &measure.Result{Kind: measure.KindDNS, DNS: &measure.DNSResult{Exchanges: []measure.DNSExchange{{QName: catchment.QnameGoogleMyAddr,
		Answers: []measure.RR{{Name: catchment.QnameGoogleMyAddr, Type: "TXT", Data: "2001:4860:1000::12"}}}}}}
	if m := idf.IdentifyResult(r); m.Site != "ams" {
		t.Errorf("v6 egress: got %+v", m)
	}
	for _, bad := range []string{"64.233.162.0/24\n", "gru gru\n", "64.233.162.0/24 g/r\n", "a b c\n"} {
		if _, _, err := ParseEgressTable(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestShippedGoogleMatchesFAQ: the shipped google-dns rules are the FAQ
// list as the refresh command makes it.
func TestShippedGoogleMatchesFAQ(t *testing.T) {
	services, _ := Default()
	s := Find(services, "google-dns")
	have := map[string]string{}
	for _, r := range s.Rules {
		have[r.Pattern] = r.Site
	}
	entries, _, _ := ParseEgressTable(strings.NewReader(faqList))
	for _, e := range entries {
		if have[e.Prefix.String()] != e.Site {
			t.Errorf("%s: shipped %q, FAQ %q", e.Prefix, have[e.Prefix.String()], e.Site)
		}
	}
	if _, ok := have["74.125.17.0/24"]; ok {
		t.Error("the ambiguous 74.125.17.0/24 is shipped")
	}
}

func FuzzParseEgressTable(f *testing.F) {
	f.Add(faqList)                     // the FAQ's format
	f.Add("\"gru 64.233.162.0/24\"\n") // TXT record form, quoted, code first
	f.Add("2001:db8::/32 ams\n;x\n\n") // IPv6, comment
	f.Add("300.1.1.1/24 x\n")          // bad prefix
	f.Fuzz(func(t *testing.T, in string) {
		entries, _, err := ParseEgressTable(strings.NewReader(in))
		if err != nil {
			return
		}
		if _, err := catchment.NewIdentifier(nil, EgressRules(entries, "fuzz")); err != nil {
			t.Fatalf("parsed table gives invalid rules: %v", err)
		}
	})
}
