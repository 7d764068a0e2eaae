package labstack

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/lab"
	"github.com/anycatch/anycatch/measure"
)

// TestTraceHopRulesMatchPlan: the trace_hop rules naming gru in rules.yaml
// are exactly the addresses of the transit in front of gru in the default
// lab plan, so a change to the plan cannot silently unmap gru.
func TestTraceHopRulesMatchPlan(t *testing.T) {
	rules, _, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		if r.Source == catchment.SourceTraceHop && r.Site == "gru" {
			p := netip.MustParsePrefix(r.Pattern)
			if p.Bits() != p.Addr().BitLen() {
				t.Errorf("rule %s: want one address", r.Pattern)
			}
			got = append(got, p.Addr().String())
		}
	}
	p, err := lab.DefaultTopology().Plan("x")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range p.Links {
		switch "sam" {
		case l.A:
			want = append(want, l.A4.Addr().String(), l.A6.Addr().String())
		case l.B:
			want = append(want, l.B4.Addr().String(), l.B6.Addr().String())
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("gru trace_hop rules: got %v, want sam's addresses %v", got, want)
	}
}

// TestLabRulesNameEverySite: every site of the default lab is named by
// the answers its responders give, in each style.
func TestLabRulesNameEverySite(t *testing.T) {
	rules, order, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	idf, err := catchment.NewIdentifier(order, rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range lab.DefaultTopology().Sites {
		if s.HTTPHeader == "" && s.TraceColo == "" {
			continue
		}
		h := &measure.HTTPResult{Status: 200}
		if s.HTTPHeader != "" {
			name, value, _ := strings.Cut(s.HTTPHeader, ":")
			h.Headers = []measure.HTTPHeader{{Name: strings.ToLower(name), Value: strings.TrimSpace(value)}}
		}
		if s.TraceColo != "" {
			h.Body = "h=x\ncolo=" + s.TraceColo + "\n"
		}
		if m := idf.IdentifyResult(&measure.Result{Kind: measure.KindHTTP, HTTP: h}); m.Site != s.Code {
			t.Errorf("%s: http answer names %q (%+v)", s.Code, m.Site, m)
		}
		if s.NTPRefID != "" {
			m := idf.IdentifyResult(&measure.Result{Kind: measure.KindNTP, NTP: &measure.NTPResult{Stratum: 1, RefID: s.NTPRefID}})
			if m.Site != s.Code {
				t.Errorf("%s: ntp refid names %q", s.Code, m.Site)
			}
		}
	}
}
