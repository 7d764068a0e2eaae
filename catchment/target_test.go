package catchment

import (
	"errors"
	"testing"

	"github.com/anycatch/anycatch/measure"
)

func TestTargetValidate(t *testing.T) {
	valid := func() Target {
		return Target{Name: "k-root", Addr4: "198.18.53.53", Addr6: "2001:db8:53::53", IntervalSec: 300,
			Specs: []measure.Spec{{Kind: measure.KindIdentity}}, IdentityOrder: []string{SourceNSID}}
	}
	tests := []struct {
		name   string
		change func(*Target)
		field  string // "" when valid
	}{
		{"valid", func(*Target) {}, ""},
		{"v6 only", func(t *Target) { t.Addr4 = "" }, ""},
		{"limits", func(t *Target) { t.IntervalSec = 86400; t.Name = "a" }, ""},
		{"upper-case name", func(t *Target) { t.Name = "K-root" }, "name"},
		{"name of 64", func(t *Target) { t.Name = "a123456789012345678901234567890123456789012345678901234567890123" }, "name"},
		{"v6 as addr4", func(t *Target) { t.Addr4 = "2001:db8::1" }, "addr4"},
		{"v4-mapped as addr6", func(t *Target) { t.Addr6 = "::ffff:198.18.0.1" }, "addr6"},
		{"zone", func(t *Target) { t.Addr6 = "fe80::1%eth0" }, "addr6"},
		{"interval 9", func(t *Target) { t.IntervalSec = 9 }, "interval_sec"},
		{"interval zero", func(t *Target) { t.IntervalSec = 0 }, "interval_sec"},
		{"unknown kind", func(t *Target) { t.Specs = append(t.Specs, measure.Spec{Kind: "smtp"}) }, "specs"},
		{"unknown source", func(t *Target) { t.IdentityOrder = []string{"any"} }, "identity_order"},
		{"no address", func(t *Target) { t.Addr4, t.Addr6 = "", "" }, "addr4"},
		{"first problem wins", func(t *Target) { t.Addr6, t.IntervalSec = "x", 1 }, "addr6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := valid()
			tc.change(&tg)
			checkInvalid(t, tg.Validate(), tc.field)
		})
	}
}

func TestSiteValidate(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name  string
		site  Site
		field string
	}{
		{"valid", Site{Code: "ams", Name: "Amsterdam", Lat: f(-90), Lon: f(180), Unicast4: "198.18.1.1", Unicast6: "2001:db8::1"}, ""},
		{"code only", Site{Code: "a"}, ""},
		{"empty code", Site{}, "code"},
		{"upper-case code", Site{Code: "AMS"}, "code"},
		{"latitude", Site{Code: "ams", Lat: f(90.5)}, "lat"},
		{"longitude", Site{Code: "ams", Lon: f(-181)}, "lon"},
		{"v6 as unicast4", Site{Code: "ams", Unicast4: "::1"}, "unicast4"},
		{"v4 as unicast6", Site{Code: "ams", Unicast6: "198.18.1.1"}, "unicast6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, tc.site.Validate(), tc.field) })
	}
}

func TestRuleValidate(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		ok   bool
	}{
		{"regex with site group", Rule{Source: SourceAny, Match: MatchRegex, Pattern: `^(?P<site>[a-z]+)\d$`}, true},
		{"exact", Rule{Source: SourceNSID, Match: MatchExact, Pattern: "ams1", Site: "ams"}, true},
		{"exact without site", Rule{Source: SourceNSID, Match: MatchExact, Pattern: "ams1"}, false},
		{"bad regex", Rule{Source: SourceAny, Match: MatchRegex, Pattern: `(`}, false},
		{"unknown source", Rule{Source: "txt", Match: MatchExact, Pattern: "a", Site: "a"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.rule.Validate(); (err == nil) != tc.ok {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if err := ValidateRules([]string{SourceNSID, SourceNSID}, nil); err == nil {
		t.Error("ValidateRules accepted a source listed twice")
	}
}

func checkInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var ie *InvalidError
	switch {
	case field == "" && err != nil:
		t.Errorf("got %v, want valid", err)
	case field != "" && !errors.As(err, &ie):
		t.Errorf("got %v, want an *InvalidError on %s", err, field)
	case field != "" && ie.Field != field:
		t.Errorf("got an error on %s (%v), want one on %s", ie.Field, err, field)
	}
}
