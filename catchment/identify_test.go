package catchment

import (
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// Rules shaped like the shipped ones (catchment/rulesets), kept here so
// this package's tests do not depend on the rules data.
var testRules = []Rule{
	{Source: SourceAny, Match: MatchRegex, Pattern: `^[a-z0-9]+\.(?P<site>[a-z]{2}-[a-z]{3}|[a-z-]+)\.k\.ripe\.net$`},
	{Source: SourceIDServer, Match: MatchRegex, Pattern: `^res\d+\.(?P<site>[a-z]{3})\.rrdns\.pch\.net$`},
	{Source: SourceIDServer, Match: MatchRegex, Pattern: `^(?P<site>[A-Za-z]{3})$`},
	{Source: SourceNSID, Match: MatchRegex, Pattern: `^edge-(?P<site>[a-z]+)\d*$`},
	{Source: SourceHostnameBind, Match: MatchExact, Pattern: "legacy-box-7", Site: "LHR"},
	{Source: SourceHostnameBind, Match: MatchRegex, Pattern: `^lab-`, Site: "lab"},
}

func TestIdentify(t *testing.T) {
	idf, err := NewIdentifier(nil, testRules)
	if err != nil {
		t.Fatal(err)
	}
	nsidFirst, err := NewIdentifier([]string{SourceNSID, SourceHostnameBind}, testRules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		idf          *Identifier
		id           *measure.Identity
		wantState    State
		wantSite     string
		wantIdentity string
	}{
		{"k-root hostname.bind", idf, &measure.Identity{HostnameBind: "ns1.fi-hel.k.ripe.net"}, StateSite, "fi-hel", "ns1.fi-hel.k.ripe.net"},
		{"k-root older NSID only", idf, &measure.Identity{NSID: "k3.ams-ix.k.ripe.net"}, StateSite, "ams-ix", "k3.ams-ix.k.ripe.net"},
		{"pch id.server", idf, &measure.Identity{IDServer: "res200.vie.rrdns.pch.net"}, StateSite, "vie", "res200.vie.rrdns.pch.net"},
		{"cloudflare colo is lowercased", idf, &measure.Identity{IDServer: "AMS"}, StateSite, "ams", "AMS"},
		{"nsid-only site", idf, &measure.Identity{NSID: "edge-fra2"}, StateSite, "fra", "edge-fra2"},
		{"exact rule, fixed site lowercased", idf, &measure.Identity{HostnameBind: "legacy-box-7"}, StateSite, "lhr", "legacy-box-7"},
		{"regex with fixed site", idf, &measure.Identity{HostnameBind: "lab-12"}, StateSite, "lab", "lab-12"},
		{"preferred source unmatched, next source matches", idf,
			&measure.Identity{HostnameBind: "mystery", IDServer: "res100.lis.rrdns.pch.net"}, StateSite, "lis", "res100.lis.rrdns.pch.net"},
		{"order decides between two matching sources", nsidFirst,
			&measure.Identity{HostnameBind: "ns1.fi-hel.k.ripe.net", NSID: "edge-ams1"}, StateSite, "ams", "edge-ams1"},
		{"source outside the order is ignored", nsidFirst,
			&measure.Identity{IDServer: "res100.lis.rrdns.pch.net"}, StateUnidentified, "", ""},
		{"no match keeps preferred raw identity", idf,
			&measure.Identity{HostnameBind: "unknown-host", NSID: "other"}, StateUnidentified, "", "unknown-host"},
		{"rule for another source does not apply", idf, &measure.Identity{HostnameBind: "res200.vie.rrdns.pch.net"}, StateUnidentified, "", "res200.vie.rrdns.pch.net"},
		{"empty identity", idf, &measure.Identity{}, StateUnidentified, "", ""},
		{"nil identity", idf, nil, StateUnidentified, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, site, ident := tt.idf.Identify(tt.id)
			if st != tt.wantState || site != tt.wantSite || ident != tt.wantIdentity {
				t.Errorf("got (%s, %q, %q), want (%s, %q, %q)", st, site, ident, tt.wantState, tt.wantSite, tt.wantIdentity)
			}
		})
	}
}

func TestIdentifyEmptySiteGroupIsNoMatch(t *testing.T) {
	idf, err := NewIdentifier(nil, []Rule{
		{Source: SourceAny, Match: MatchRegex, Pattern: `^x(?P<site>[a-z]*)$`},
		{Source: SourceAny, Match: MatchRegex, Pattern: `^x`, Site: "fallback"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{{"x", "fallback"}, {"xams", "ams"}, {"x!!", "fallback"}} {
		if _, site, _ := idf.Identify(&measure.Identity{HostnameBind: tc.in}); site != tc.want {
			t.Errorf("Identify(%q): got site %q, want %q", tc.in, site, tc.want)
		}
	}
}

func TestNewIdentifierErrors(t *testing.T) {
	tests := []struct {
		name    string
		order   []string
		rules   []Rule
		wantErr string
	}{
		{"bad regex", nil, []Rule{{Source: SourceAny, Match: MatchRegex, Pattern: `(?P<site>[a-z`}}, "rule 0: pattern: error parsing regexp"},
		{"regex without site group or site", nil, []Rule{{Source: SourceAny, Match: MatchRegex, Pattern: `^ams`}}, "rule 0: regex \"^ams\" has no (?P<site>…) group"},
		{"regex with both", nil, []Rule{{Source: SourceAny, Match: MatchRegex, Pattern: `^(?P<site>x)`, Site: "y"}}, "rule 0: regex \"^(?P<site>x)\" has a site group and a fixed site"},
		{"exact without site", nil, []Rule{
			{Source: SourceAny, Match: MatchExact, Pattern: "a", Site: "a"},
			{Source: SourceAny, Match: MatchExact, Pattern: "b"}}, "rule 1: exact rule needs a site"},
		{"unknown source", nil, []Rule{{Source: "version_bind", Match: MatchExact, Pattern: "a", Site: "a"}}, "rule 0: unknown source \"version_bind\""},
		{"unknown match", nil, []Rule{{Source: SourceAny, Match: "glob", Pattern: "a*", Site: "a"}}, "rule 0: unknown match \"glob\""},
		{"empty pattern", nil, []Rule{{Source: SourceAny, Match: MatchExact, Site: "a"}}, "rule 0: empty pattern"},
		{"bad site code", nil, []Rule{{Source: SourceAny, Match: MatchExact, Pattern: "a", Site: "no spaces"}}, "rule 0: site \"no spaces\" is not a valid site code"},
		{"bad order", []string{"hostname_bind", "any"}, nil, "identity order: unknown source \"any\""},
		{"duplicate order", []string{"nsid", "nsid"}, nil, "identity order: source \"nsid\" listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewIdentifier(tt.order, tt.rules)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestObservationFromResult(t *testing.T) {
	idf, err := NewIdentifier(nil, testRules)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2021, 2, 10, 14, 45, 59, 0, time.UTC)
	id := measure.NewUUIDv7(ts)
	res := func(dns *measure.DNSResult, errStr string) *measure.Result {
		return &measure.Result{V: 1, ID: id, Probe: "atlas:1", Measurement: "m", Kind: measure.KindDNS, Time: ts, Dst: "9.9.9.9", AF: 4, DNS: dns, Error: errStr}
	}
	answer := func(rtt float64, ident *measure.Identity) *measure.DNSResult {
		return &measure.DNSResult{Exchanges: []measure.DNSExchange{{QName: "id.server.", RTT: rtt, Rcode: "NOERROR"}}, Identity: ident}
	}
	tests := []struct {
		name      string
		r         *measure.Result
		wantState State
		wantSite  string
		wantIdent string
		wantRTT   float64 // 0 = nil
		wantErr   bool
	}{
		{"identified", res(answer(16.1, &measure.Identity{IDServer: "res300.vie.rrdns.pch.net"}), ""), StateSite, "vie", "res300.vie.rrdns.pch.net", 16.1, false},
		{"answer without identity is unidentified, saying why", res(answer(12, nil), ""), StateUnidentified, "", "(no TXT)", 12, false},
		{"unmapped", res(answer(12, &measure.Identity{IDServer: "zzz.example"}), ""), StateUnidentified, "", "zzz.example", 12, false},
		{"timeout", res(&measure.DNSResult{Exchanges: []measure.DNSExchange{{QName: "id.server.", Error: "timeout"}}}, ""), StateUnreachable, "", "", 0, false},
		{"could not measure", res(nil, "socket: connect failed"), StateUnreachable, "", "", 0, false},
		{"ping result", &measure.Result{V: 1, ID: id, Kind: measure.KindPing, Time: ts, Ping: &measure.PingResult{}}, StateUnreachable, "", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ObservationFromResult(7, tt.r, idf)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if o.State != tt.wantState || o.Site != tt.wantSite || o.Identity != tt.wantIdent {
				t.Errorf("got (%s, %q, %q), want (%s, %q, %q)", o.State, o.Site, o.Identity, tt.wantState, tt.wantSite, tt.wantIdent)
			}
			gotRTT := 0.0
			if o.RTT != nil {
				gotRTT = *o.RTT
			}
			if gotRTT != tt.wantRTT {
				t.Errorf("got rtt %v, want %v", gotRTT, tt.wantRTT)
			}
			if o.Key != (Key{Target: 7, Probe: "atlas:1", AF: 4}) || !o.Time.Equal(ts) || o.ResultID != id {
				t.Errorf("got key %+v time %v id %v, want target 7 probe atlas:1 af 4 at %v id %v", o.Key, o.Time, o.ResultID, ts, id)
			}
		})
	}
}

func BenchmarkIdentify(b *testing.B) {
	idf, err := NewIdentifier(nil, testRules)
	if err != nil {
		b.Fatal(err)
	}
	cases := map[string]*measure.Identity{
		"hit-first-rule": {HostnameBind: "ns1.fi-hel.k.ripe.net"},
		"hit-later-rule": {IDServer: "res200.vie.rrdns.pch.net"},
		"exact":          {HostnameBind: "legacy-box-7"},
		"miss":           {HostnameBind: "nothing-matches-this.example", NSID: "nor-this"},
	}
	for name, id := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				idf.Identify(id)
			}
		})
	}
}

// FuzzIdentify compiles arbitrary rules and checks Identify's promises:
// a site only with StateSite, always a valid lowercase code, and the
// identity is one of the inputs.
func FuzzIdentify(f *testing.F) {
	f.Add(`^res\d+\.(?P<site>[a-z]{3})\.rrdns\.pch\.net$`, "", "res200.vie.rrdns.pch.net") // PCH
	f.Add(`^(?P<site>[A-Za-z]{3})$`, "", "AMS")                                            // Cloudflare colo
	f.Add(`(?P<site>.*)`, "", "Ünïcode SITE")                                              // invalid code: no match
	f.Add(`^x`, "fixed", "xyz")                                                            // fixed site
	f.Fuzz(func(t *testing.T, pattern, site, identity string) {
		idf, err := NewIdentifier(nil, []Rule{{Source: SourceAny, Match: MatchRegex, Pattern: pattern, Site: site}})
		if err != nil {
			return
		}
		id := &measure.Identity{HostnameBind: identity, NSID: identity}
		st, s, ident := idf.Identify(id)
		switch st {
		case StateSite:
			if !siteCode.MatchString(s) {
				t.Fatalf("got site %q, want a valid site code", s)
			}
		case StateUnidentified:
			if s != "" {
				t.Fatalf("got site %q with state %s", s, st)
			}
		default:
			t.Fatalf("got state %s", st)
		}
		if ident != identity {
			t.Fatalf("got identity %q, want %q", ident, identity)
		}
	})
}
