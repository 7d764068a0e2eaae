package catchment

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/anycatch/anycatch/measure"
)

// DefaultIdentityOrder is the source preference used when a target names
// none: hostname.bind first (the classic instance name), then id.server,
// then the EDNS NSID.
var DefaultIdentityOrder = []string{SourceHostnameBind, SourceIDServer, SourceNSID}

// Rule match kinds.
const (
	MatchRegex = "regex"
	MatchExact = "exact"
)

// siteCode is the shape the schema accepts for a site code.
var siteCode = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// source indexes the identity strings of a measure.Identity.
type source uint8

const (
	srcHostnameBind source = iota
	srcIDServer
	srcNSID
	srcAny
)

func parseSource(s string) (source, bool) {
	switch s {
	case SourceHostnameBind:
		return srcHostnameBind, true
	case SourceIDServer:
		return srcIDServer, true
	case SourceNSID:
		return srcNSID, true
	case SourceAny:
		return srcAny, true
	}
	return 0, false
}

func (s source) of(id *measure.Identity) string {
	switch s {
	case srcHostnameBind:
		return id.HostnameBind
	case srcIDServer:
		return id.IDServer
	case srcNSID:
		return id.NSID
	}
	return ""
}

type compiledRule struct {
	src     source
	re      *regexp.Regexp // nil for exact rules
	siteIdx int            // index of the "site" group in re; -1 when the rule has a fixed Site
	exact   string
	site    string // normalised fixed site, or ""
}

// Identifier maps identities to sites with one target's ordered rules. It
// is immutable after [NewIdentifier] and safe for concurrent use.
type Identifier struct {
	order []source
	rules []compiledRule
}

// NewIdentifier validates and compiles rules. order lists the identity
// sources to try, most preferred first; nil or empty means
// [DefaultIdentityOrder]. Every problem is reported, each naming the rule's
// 0-based index.
func NewIdentifier(order []string, rules []Rule) (*Identifier, error) {
	if len(order) == 0 {
		order = DefaultIdentityOrder
	}
	var errs []error
	idf := &Identifier{}
	seen := map[source]bool{}
	for _, o := range order {
		s, ok := parseSource(o)
		if !ok || s == srcAny {
			errs = append(errs, fmt.Errorf("identity order: unknown source %q (want hostname_bind, id_server or nsid)", o))
			continue
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("identity order: source %q listed twice", o))
			continue
		}
		seen[s] = true
		idf.order = append(idf.order, s)
	}
	for i, r := range rules {
		c, err := compileRule(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, err))
			continue
		}
		idf.rules = append(idf.rules, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return idf, nil
}

func compileRule(r Rule) (compiledRule, error) {
	var c compiledRule
	src, ok := parseSource(r.Source)
	if !ok {
		return c, fmt.Errorf("unknown source %q (want hostname_bind, id_server, nsid or any)", r.Source)
	}
	c.src = src
	c.siteIdx = -1
	if r.Site != "" {
		c.site = strings.ToLower(r.Site)
		if !siteCode.MatchString(c.site) {
			return c, fmt.Errorf("site %q is not a valid site code (lowercase letters, digits, '.', '_', '-'; at most 32)", r.Site)
		}
	}
	if r.Pattern == "" {
		return c, errors.New("empty pattern")
	}
	switch r.Match {
	case MatchExact:
		if r.Site == "" {
			return c, errors.New("exact rule needs a site")
		}
		c.exact = r.Pattern
	case MatchRegex:
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			return c, fmt.Errorf("pattern: %w", err)
		}
		c.re = re
		c.siteIdx = re.SubexpIndex("site")
		if c.siteIdx < 0 && r.Site == "" {
			return c, fmt.Errorf("regex %q has no (?P<site>…) group and the rule has no fixed site", r.Pattern)
		}
		if c.siteIdx >= 0 && r.Site != "" {
			return c, fmt.Errorf("regex %q has a site group and a fixed site %q: use one", r.Pattern, r.Site)
		}
	default:
		return c, fmt.Errorf("unknown match %q (want regex or exact)", r.Match)
	}
	return c, nil
}

// Identify maps one identity to a site. Sources are tried in the
// identifier's order; for each non-empty source the rules are tried in
// their order and the first match wins. Site codes come back lowercased.
//
// When nothing matches, state is StateUnidentified and identity is the
// most preferred non-empty identity string (so it can be surfaced as
// unmapped); with no identity at all both site and identity are "".
// Identify never returns StateUnreachable: only the caller knows whether
// an answer came back at all.
//
// A regex match whose site group is empty or not a valid site code is
// treated as no match. Identify allocates only for a regex match (one
// slice for the submatch indexes) and when a site needs lowercasing.
func (idf *Identifier) Identify(id *measure.Identity) (state State, site, identity string) {
	if id == nil {
		return StateUnidentified, "", ""
	}
	for _, src := range idf.order {
		v := src.of(id)
		if v == "" {
			continue
		}
		if identity == "" {
			identity = v
		}
		for i := range idf.rules {
			r := &idf.rules[i]
			if r.src != src && r.src != srcAny {
				continue
			}
			if s, ok := r.match(v); ok {
				return StateSite, s, v
			}
		}
	}
	return StateUnidentified, "", identity
}

func (r *compiledRule) match(v string) (string, bool) {
	if r.re == nil {
		return r.site, v == r.exact
	}
	if r.siteIdx < 0 {
		return r.site, r.re.MatchString(v)
	}
	// MatchString first: it does not allocate, and most rules miss.
	if !r.re.MatchString(v) {
		return "", false
	}
	m := r.re.FindStringSubmatchIndex(v)
	if m == nil || m[2*r.siteIdx] < 0 {
		return "", false
	}
	s := lower(v[m[2*r.siteIdx]:m[2*r.siteIdx+1]])
	if !siteCode.MatchString(s) {
		return "", false
	}
	return s, true
}

// lower is strings.ToLower without the allocation for the common case of
// an already lowercase ASCII code.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}

// ErrNotIdentity is returned by [ObservationFromResult] for a result that
// carries no DNS payload and no measurement error.
var ErrNotIdentity = errors.New("result is not a dns or identity result")

// ObservationFromResult turns a stored dns or identity result into the
// catchment observation for (targetID, r.Probe, r.AF). A result is
// unreachable when the probe could not measure (r.Error) or no exchange got
// an answer (every exchange has an Error); otherwise the identity is
// mapped with idf and the observation carries the result's RTT. An answer
// without any identity (e.g. SERVFAIL, REFUSED) is unidentified with "".
func ObservationFromResult(targetID int, r *measure.Result, idf *Identifier) (Observation, error) {
	o := Observation{
		Key:      Key{Target: targetID, Probe: r.Probe, AF: r.AF},
		Time:     r.Time,
		ResultID: r.ID,
		State:    StateUnreachable,
	}
	if r.DNS == nil {
		if r.Error != "" {
			return o, nil
		}
		return o, ErrNotIdentity
	}
	if r.Error != "" || !answered(r.DNS) {
		return o, nil
	}
	o.State, o.Site, o.Identity = idf.Identify(r.DNS.Identity)
	if o.State == StateUnidentified && o.Identity == "" {
		o.Identity = NoIdentityReason(r.DNS)
	}
	if rtt, ok := r.RTT(); ok {
		o.RTT = &rtt
	}
	return o, nil
}

// NoIdentityReason says why an answered dns result carries no identity,
// as the identity of an unidentified observation: "(REFUSED)",
// "(SERVFAIL)", "(NOTIMP)" or another rcode in brackets when the server
// said no, "(no TXT)" when it answered NOERROR without an identity. One
// empty identity for all of them hid whether a site refuses CHAOS queries
// or a resolver in the path answers instead. The brackets cannot come from
// a reply's identity text as rules see it: rules match the reply, never
// this marker.
func NoIdentityReason(d *measure.DNSResult) string {
	for i := range d.Exchanges {
		ex := &d.Exchanges[i]
		if ex.Error == "" && ex.Rcode != "" && ex.Rcode != "NOERROR" {
			return "(" + ex.Rcode + ")"
		}
	}
	return "(no TXT)"
}

func answered(d *measure.DNSResult) bool {
	for i := range d.Exchanges {
		if d.Exchanges[i].Error == "" {
			return true
		}
	}
	// An identity without exchanges (hand-built results) is still an answer.
	return len(d.Exchanges) == 0 && !d.Identity.Empty()
}
