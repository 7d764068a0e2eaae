package catchment

import (
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

var beyondRules = []Rule{
	{Source: SourceHostnameBind, Match: MatchRegex, Pattern: `^(?P<site>[a-z]{3})\.lab$`},
	{Source: "http_header:x-site", Match: MatchRegex, Pattern: `^(?P<site>[a-z]{3})$`},
	{Source: SourceHTTPBody, Match: MatchRegex, Pattern: `(?m)^colo=(?P<site>[A-Z]{3})$`},
	{Source: SourceNTPRefID, Match: MatchExact, Pattern: "GPS", Site: "ams"},
	{Source: SourceEgressAddr, Match: MatchPrefix, Pattern: "192.0.2.0/25", Site: "fra"},
	{Source: SourceTraceHop, Match: MatchPrefix, Pattern: "198.18.5.0/24", Site: "gru"},
	{Source: SourceTraceHop, Match: MatchPrefix, Pattern: "2001:db8:5::1", Site: "gru"},
}

func trace(dst string, hops ...string) *measure.Result {
	t := &measure.TraceResult{Reached: true}
	for i, h := range hops {
		p := measure.HopProbe{From: h, RTT: 1}
		if h == "*" {
			p = measure.HopProbe{Timeout: true}
		}
		t.Hops = append(t.Hops, measure.Hop{TTL: i + 1, Probes: []measure.HopProbe{p}})
	}
	return &measure.Result{Kind: measure.KindTrace, Dst: dst, Trace: t}
}

func TestIdentifyResult(t *testing.T) {
	idf, err := NewIdentifier(nil, beyondRules)
	if err != nil {
		t.Fatal(err)
	}
	httpRes := func(hdr map[string]string, body string) *measure.Result {
		h := &measure.HTTPResult{Status: 200, Body: body}
		for k, v := range hdr {
			h.Headers = append(h.Headers, measure.HTTPHeader{Name: k, Value: v})
		}
		return &measure.Result{Kind: measure.KindHTTP, HTTP: h}
	}
	tests := []struct {
		name               string
		r                  *measure.Result
		wantSite, wantFrom string
		wantIdentity       string
	}{
		{"http header", httpRes(map[string]string{"x-site": "lhr"}, ""), "lhr", "http_header:x-site", "lhr"},
		{"header beats body", httpRes(map[string]string{"x-site": "lhr"}, "colo=CDG\n"), "lhr", "http_header:x-site", "lhr"},
		{"body when the header does not match", httpRes(map[string]string{"x-site": "LHR-1"}, "a=b\ncolo=CDG\n"), "cdg", "http_body", "colo=CDG"},
		{"header without a rule is no identity", httpRes(map[string]string{"server": "nginx"}, ""), "", "", ""},
		{"unmatched header surfaces its value", httpRes(map[string]string{"x-site": "LHR-1"}, ""), "", "http_header:x-site", "LHR-1"},
		{"http error reply", &measure.Result{Kind: measure.KindHTTP, HTTP: &measure.HTTPResult{Error: "timeout"}}, "", "", ""},
		{"ntp refid", &measure.Result{Kind: measure.KindNTP, NTP: &measure.NTPResult{Stratum: 1, RefID: "GPS"}}, "ams", "ntp_refid", "GPS"},
		{"ntp kiss is not a refid", &measure.Result{Kind: measure.KindNTP, NTP: &measure.NTPResult{RefID: "GPS", Kiss: "RATE"}}, "", "", ""},
		{"trace last hop", trace("198.18.53.53", "10.0.0.1", "198.18.5.1", "198.18.53.53"), "gru", "trace_hop", "198.18.5.1"},
		{"trace hop before a silent gap", trace("198.18.53.53", "198.18.5.1", "*", "10.9.9.9", "198.18.53.53"), "gru", "trace_hop", "198.18.5.1"},
		{"trace hop too far back", trace("198.18.53.53", "198.18.5.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "198.18.53.53"), "", "trace_hop", "10.0.0.4"},
		{"trace v6 exact address", trace("2001:db8:53::53", "2001:db8:5::1", "2001:db8:53::53"), "gru", "trace_hop", "2001:db8:5::1"},
		{"dns identity beats everything", &measure.Result{Kind: measure.KindIdentity, DNS: &measure.DNSResult{
			Identity: &measure.Identity{HostnameBind: "ams.lab"}}}, "ams", "hostname_bind", "ams.lab"},
		{"egress address", &measure.Result{Kind: measure.KindDNS, DNS: &measure.DNSResult{Exchanges: []measure.DNSExchange{{
			QName: QnameGoogleMyAddr, Answers: []measure.RR{{Name: QnameGoogleMyAddr, Type: "TXT", Data: "192.0.2.7"}}}}}}, "fra", "egress_addr", "192.0.2.7"},
		{"egress from another name is ignored", &measure.Result{Kind: measure.KindDNS, DNS: &measure.DNSResult{Exchanges: []measure.DNSExchange{{
			QName: "example.com.", Answers: []measure.RR{{Name: "example.com.", Type: "TXT", Data: "192.0.2.7"}}}}}}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := idf.IdentifyResult(tt.r)
			if m.Site != tt.wantSite || m.Source != tt.wantFrom || m.Identity != tt.wantIdentity {
				t.Errorf("got (site %q, source %q, identity %q), want (%q, %q, %q)", m.Site, m.Source, m.Identity, tt.wantSite, tt.wantFrom, tt.wantIdentity)
			}
			if (m.State == StateSite) != (tt.wantSite != "") {
				t.Errorf("got state %s with site %q", m.State, m.Site)
			}
		})
	}
}

func TestIdentityOrderPutsLaterSourcesFirst(t *testing.T) {
	// A target may rank trace hops above HTTP headers.
	idf, err := NewIdentifier([]string{SourceTraceHop, SourceHTTPHeader}, beyondRules)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := idf.SourceRank("trace_hop"), idf.SourceRank("http_header:x-site"); a >= b {
		t.Errorf("got ranks trace_hop %d, http_header %d; want trace_hop stronger", a, b)
	}
	def, _ := NewIdentifier(nil, nil)
	order := []string{"hostname_bind", "id_server", "nsid", "http_header:x", "http_body", "ntp_refid", "egress_addr", "trace_hop", ""}
	for i := 1; i < len(order); i++ {
		if def.SourceRank(order[i-1]) >= def.SourceRank(order[i]) {
			t.Errorf("default order: got %s ranked no stronger than %s", order[i-1], order[i])
		}
	}
}

func TestNewIdentifierBeyondErrors(t *testing.T) {
	for _, tt := range []struct {
		rule Rule
		want string
	}{
		{Rule{Source: "http_header", Match: MatchRegex, Pattern: "x", Site: "a"}, "needs a header name"},
		{Rule{Source: "http_header:X Bad", Match: MatchRegex, Pattern: "x", Site: "a"}, "header name must be"},
		{Rule{Source: SourceHTTPBody, Match: MatchPrefix, Pattern: "10.0.0.0/8", Site: "a"}, "prefix rules apply to"},
		{Rule{Source: SourceTraceHop, Match: MatchPrefix, Pattern: "10.0.0.0/33", Site: "a"}, "is not a prefix"},
		{Rule{Source: SourceTraceHop, Match: MatchPrefix, Pattern: "10.0.0.0/8"}, "prefix rule needs a site"},
		{Rule{Source: "ntp", Match: MatchExact, Pattern: "GPS", Site: "a"}, `unknown source "ntp"`},
	} {
		_, err := NewIdentifier(nil, []Rule{tt.rule})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want error containing %q", tt.rule, err, tt.want)
		}
	}
	if _, err := NewIdentifier([]string{"http_header", "trace_hop", "any"}, nil); err == nil || !strings.Contains(err.Error(), `unknown source "any"`) {
		t.Errorf("order with any: got %v", err)
	}
}

func TestObservationFromResultBeyondDNS(t *testing.T) {
	idf, _ := NewIdentifier(nil, beyondRules)
	o, err := ObservationFromResult(1, trace("198.18.53.53", "198.18.5.1", "198.18.53.53"), idf)
	if err != nil || o.State != StateSite || o.Site != "gru" || o.Source != "trace_hop" {
		t.Errorf("mapped trace: got %+v, %v", o, err)
	}
	if _, err := ObservationFromResult(1, trace("198.18.53.53", "10.1.1.1", "198.18.53.53"), idf); err != ErrNotIdentity {
		t.Errorf("unmapped trace: got %v, want ErrNotIdentity (a trace alone says nothing about identity)", err)
	}
	o, err = ObservationFromResult(1, &measure.Result{Kind: measure.KindHTTP, HTTP: &measure.HTTPResult{Error: "timeout"}}, idf)
	if err != nil || o.State != StateUnreachable {
		t.Errorf("http timeout: got %+v, %v, want unreachable", o, err)
	}
	o, err = ObservationFromResult(1, &measure.Result{Kind: measure.KindNTP, NTP: &measure.NTPResult{Stratum: 1, RefID: "GPS", RTT: 4}}, idf)
	if err != nil || o.Site != "ams" || o.RTT == nil || *o.RTT != 4 {
		t.Errorf("ntp: got %+v, %v", o, err)
	}
	if _, err := ObservationFromResult(1, &measure.Result{Kind: measure.KindPing, Error: "no route"}, idf); err != ErrNotIdentity {
		t.Errorf("failed ping: got %v, want ErrNotIdentity", err)
	}
}

func kind(o Observation, k measure.Kind) Observation { o.Kind = k; return o }

func TestAdvanceSourcePrecedence(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	key := Key{Target: 1, Probe: "p", AF: 4}
	ob := func(sec int, st State, site, src string) Observation {
		return Observation{Key: key, Time: t0.Add(time.Duration(sec) * time.Second), State: st, Site: site, Source: src}
	}
	type step struct {
		o        Observation
		wantSite string
		wantSt   State
		change   bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"an unmapped identity from the same kind of source moves the track", []step{
			{ob(0, StateSite, "ams", "nsid"), "ams", StateSite, true},
			{ob(10, StateUnidentified, "", "hostname_bind"), "", StateUnidentified, true},
		}},
		{"an unmapped identity from another kind of source does not", []step{
			{ob(0, StateSite, "gru", "trace_hop"), "gru", StateSite, true},
			{ob(10, StateUnidentified, "", "ntp_refid"), "gru", StateSite, false},
			{ob(20, StateUnidentified, "", "hostname_bind"), "gru", StateSite, false},
			{ob(30, StateSite, "ams", "http_header:x-site"), "ams", StateSite, true},
		}},
		{"the kind that named the site is always heard", []step{
			{ob(0, StateSite, "ams", "hostname_bind"), "ams", StateSite, true},
			{kind(ob(10, StateUnidentified, "", ""), measure.KindIdentity), "", StateUnidentified, true},
			{kind(ob(20, StateSite, "gru", "trace_hop"), measure.KindTrace), "gru", StateSite, true},
			{kind(ob(30, StateUnidentified, "", ""), measure.KindIdentity), "gru", StateSite, false},
			{kind(ob(40, StateUnidentified, "", ""), measure.KindHTTP), "gru", StateSite, false},
		}},
		{"silent site: unidentified answers do not undo a trace hop", []step{
			{ob(0, StateUnidentified, "", ""), "", StateUnidentified, true},
			{ob(10, StateSite, "gru", "trace_hop"), "gru", StateSite, true},
			{ob(20, StateUnidentified, "", ""), "gru", StateSite, false},
			{ob(30, StateSite, "gru", "trace_hop"), "gru", StateSite, false},
			{ob(40, StateUnidentified, "", ""), "gru", StateSite, false},
		}},
		{"weaker source naming another site is held", []step{
			{ob(0, StateSite, "ams", "hostname_bind"), "ams", StateSite, true},
			{ob(10, StateSite, "fra", "trace_hop"), "ams", StateSite, false},
			{ob(20, StateSite, "ams", "http_header:x-site"), "ams", StateSite, false},
		}},
		{"weaker source wins once the stronger one is stale", []step{
			{ob(0, StateSite, "ams", "hostname_bind"), "ams", StateSite, true},
			{ob(10, StateSite, "gru", "trace_hop"), "ams", StateSite, false},
			{ob(int(SourceHold/time.Second)+1, StateSite, "gru", "trace_hop"), "gru", StateSite, true},
		}},
		{"a stronger source moves the track at once", []step{
			{ob(0, StateSite, "gru", "trace_hop"), "gru", StateSite, true},
			{ob(10, StateSite, "ams", "http_header:x-site"), "ams", StateSite, true},
		}},
		{"equal sources move the track as before", []step{
			{ob(0, StateSite, "ams", "hostname_bind"), "ams", StateSite, true},
			{ob(10, StateSite, "fra", "nsid"), "fra", StateSite, true},
		}},
		{"unreachable from the kind that named the site shows", []step{
			{ob(0, StateSite, "ams", "hostname_bind"), "ams", StateSite, true},
			{kind(ob(10, StateUnreachable, "", ""), measure.KindIdentity), "ams", StateUnreachable, false},
		}},
		{"unreachable from another kind does not", []step{
			{ob(0, StateSite, "ams", "hostname_bind"), "ams", StateSite, true},
			{kind(ob(10, StateUnreachable, "", ""), measure.KindNTP), "ams", StateSite, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev *Latest
			for i, s := range tt.steps {
				next, c := Advance(prev, s.o)
				if next.Site != s.wantSite || next.State != s.wantSt || (c != nil) != s.change {
					t.Fatalf("step %d: got (%s, %q, change %v), want (%s, %q, change %v)", i, next.State, next.Site, c != nil, s.wantSt, s.wantSite, s.change)
				}
				if !next.ObservedAt.Equal(s.o.Time) {
					t.Fatalf("step %d: ObservedAt %s, want %s", i, next.ObservedAt, s.o.Time)
				}
				prev = &next
			}
		})
	}
}

// BenchmarkIdentifyResult: the ingest cost of identifying each new kind.
func BenchmarkIdentifyResult(b *testing.B) {
	idf, err := NewIdentifier(nil, beyondRules)
	if err != nil {
		b.Fatal(err)
	}
	for name, r := range map[string]*measure.Result{
		"http_header": {Kind: measure.KindHTTP, HTTP: &measure.HTTPResult{Status: 200, Headers: []measure.HTTPHeader{{Name: "server", Value: "x"}, {Name: "x-site", Value: "ams"}}}},
		"ntp_refid":   {Kind: measure.KindNTP, NTP: &measure.NTPResult{Stratum: 1, RefID: "GPS"}},
		"trace_hop":   trace("198.18.53.53", "10.0.0.1", "10.0.0.2", "198.18.5.1", "198.18.53.53"),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m := idf.IdentifyResult(r); m.State != StateSite {
					b.Fatal(m)
				}
			}
		})
	}
}
