package catchment

import (
	"errors"
	"fmt"
	"net/netip"
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
	MatchRegex  = "regex"
	MatchExact  = "exact"
	MatchPrefix = "prefix" // CIDR prefix of an address source (egress_addr, trace_hop)
)

// siteCode is the shape the schema accepts for a site code.
var siteCode = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// headerName is the shape of a header name in an http_header rule.
var headerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// source indexes the identity sources. The first three index the
// identity strings of a measure.Identity.
type source uint8

const (
	srcHostnameBind source = iota
	srcIDServer
	srcNSID
	srcAny
	srcHTTPHeader
	srcHTTPBody
	srcNTPRefID
	srcEgressAddr
	srcTraceHop
)

// laterSources are the sources beyond DNS CHAOS, weakest last: what a
// server says about itself in a reply to the anycast address beats an
// inference from addresses around it. A target's identity order may list
// them; those it leaves out are tried after the listed ones in this order.
var laterSources = []source{srcHTTPHeader, srcHTTPBody, srcNTPRefID, srcEgressAddr, srcTraceHop}

var sourceNames = [...]string{
	srcHostnameBind: SourceHostnameBind,
	srcIDServer:     SourceIDServer,
	srcNSID:         SourceNSID,
	srcAny:          SourceAny,
	srcHTTPHeader:   SourceHTTPHeader,
	srcHTTPBody:     SourceHTTPBody,
	srcNTPRefID:     SourceNTPRefID,
	srcEgressAddr:   SourceEgressAddr,
	srcTraceHop:     SourceTraceHop,
}

func (s source) String() string { return sourceNames[s] }

func parseSource(s string) (source, bool) {
	for i, n := range sourceNames {
		if s == n {
			return source(i), true
		}
	}
	return 0, false
}

// ValidOrderSource reports whether s may appear in a target's identity
// order.
func ValidOrderSource(s string) bool {
	src, ok := parseSource(s)
	return ok && src != srcAny
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
	header  string         // lowercase header name of an http_header rule
	re      *regexp.Regexp // nil for exact and prefix rules
	siteIdx int            // index of the "site" group in re; -1 when the rule has a fixed Site
	exact   string
	prefix  netip.Prefix // valid for prefix rules
	site    string       // normalised fixed site, or ""
}

// Identifier maps identities to sites with one target's ordered rules. It
// is immutable after [NewIdentifier] and safe for concurrent use.
type Identifier struct {
	order []source // DNS sources as the target lists them, then every later source
	rules []compiledRule
}

// NewIdentifier validates and compiles rules. order lists the identity
// sources to try, most preferred first; nil or empty means
// [DefaultIdentityOrder]. DNS sources left out of order are never used;
// sources beyond DNS left out are tried after the listed ones, in the
// order http_header, http_body, ntp_refid, egress_addr, trace_hop. Every
// problem is reported, each naming the rule's 0-based index.
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
			errs = append(errs, fmt.Errorf("identity order: unknown source %q (want hostname_bind, id_server, nsid, http_header, http_body, ntp_refid, egress_addr or trace_hop)", o))
			continue
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("identity order: source %q listed twice", o))
			continue
		}
		seen[s] = true
		idf.order = append(idf.order, s)
	}
	for _, s := range laterSources {
		if !seen[s] {
			idf.order = append(idf.order, s)
		}
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

// rank is the position of s in the identifier's order: lower is stronger.
func (idf *Identifier) rank(s source) int {
	for i, o := range idf.order {
		if o == s {
			return i
		}
	}
	return len(idf.order)
}

// SourceRank says how strong the named source ("http_header:cf-ray",
// "trace_hop", …) is for this identifier: lower is stronger; an unknown or
// empty source ranks weakest.
func (idf *Identifier) SourceRank(name string) int {
	if h, _, ok := strings.Cut(name, ":"); ok {
		name = h
	}
	s, ok := parseSource(name)
	if !ok {
		return len(idf.order) + 1
	}
	return idf.rank(s)
}

func compileRule(r Rule) (compiledRule, error) {
	var c compiledRule
	name := r.Source
	if h, ok := strings.CutPrefix(name, SourceHTTPHeader+":"); ok {
		if !headerName.MatchString(h) {
			return c, fmt.Errorf("source %q: header name must be lowercase letters, digits and '-'", r.Source)
		}
		c.header, name = h, SourceHTTPHeader
	} else if name == SourceHTTPHeader {
		return c, fmt.Errorf("source %q needs a header name (http_header:<name>)", r.Source)
	}
	src, ok := parseSource(name)
	if !ok {
		return c, fmt.Errorf("unknown source %q (want hostname_bind, id_server, nsid, any, http_header:<name>, http_body, ntp_refid, egress_addr or trace_hop)", r.Source)
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
	case MatchPrefix:
		if src != srcEgressAddr && src != srcTraceHop {
			return c, fmt.Errorf("prefix rules apply to egress_addr and trace_hop, not %s", r.Source)
		}
		if r.Site == "" {
			return c, errors.New("prefix rule needs a site")
		}
		p, err := netip.ParsePrefix(r.Pattern)
		if err != nil {
			a, aerr := netip.ParseAddr(r.Pattern)
			if aerr != nil {
				return c, fmt.Errorf("pattern: %q is not a prefix or an address", r.Pattern)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.prefix = p.Masked()
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
		return c, fmt.Errorf("unknown match %q (want regex, exact or prefix)", r.Match)
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
	state, site, identity, _, _ = idf.identifyDNS(id)
	return state, site, identity
}

// identifyDNS is Identify, also returning the source of identity (the
// one that named the site, or the unmapped one surfaced); ok is false when
// there is no identity at all.
func (idf *Identifier) identifyDNS(id *measure.Identity) (state State, site, identity string, by source, ok bool) {
	if id == nil {
		return StateUnidentified, "", "", 0, false
	}
	for _, src := range idf.order {
		if src > srcNSID {
			continue // not a DNS identity string
		}
		v := src.of(id)
		if v == "" {
			continue
		}
		if identity == "" {
			identity, by, ok = v, src, true
		}
		for i := range idf.rules {
			r := &idf.rules[i]
			if r.src != src && r.src != srcAny {
				continue
			}
			if s, matched := r.match(v); matched {
				return StateSite, s, v, src, true
			}
		}
	}
	return StateUnidentified, "", identity, by, ok
}

func (r *compiledRule) match(v string) (string, bool) {
	if r.prefix.IsValid() {
		a, err := netip.ParseAddr(v)
		return r.site, err == nil && r.prefix.Contains(a.Unmap())
	}
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
// says nothing about which site serves the probe: a ping, a trace no
// trace_hop rule maps, or a result without payload and error.
var ErrNotIdentity = errors.New("result is not an identity result")

// ObservationFromResult turns a stored result into the catchment
// observation for (targetID, r.Probe, r.AF).
//
// dns, identity, http and ntp results are unreachable when the probe could
// not measure (r.Error) or nothing answered; otherwise what idf makes of
// everything the result offers ([Identifier.IdentifyResult]), with the
// result's RTT. An answer without any identity (e.g. SERVFAIL, REFUSED, an
// HTTP reply no rule names) is unidentified. A trace is an observation
// only when a trace_hop rule names a site: a trace that does not reach a
// rule says nothing about the service's identity.
func ObservationFromResult(targetID int, r *measure.Result, idf *Identifier) (Observation, error) {
	o := Observation{
		Key:      Key{Target: targetID, Probe: r.Probe, AF: r.AF},
		Time:     r.Time,
		ResultID: r.ID,
		State:    StateUnreachable,
		Kind:     r.Kind,
	}
	switch {
	case r.Trace != nil:
		m := idf.IdentifyResult(r)
		if m.State != StateSite {
			return o, ErrNotIdentity
		}
		o.State, o.Site, o.Identity, o.Source = m.State, m.Site, m.Identity, m.Source
	case r.DNS != nil || r.HTTP != nil || r.NTP != nil:
		if r.Error != "" || !answered(r) {
			return o, nil
		}
		// For no match, Source says where the unmapped identity came
		// from: an unmapped hostname.bind is as strong as a mapped one
		// (see Advance), an answer with no identity at all is weakest.
		m := idf.IdentifyResult(r)
		o.State, o.Site, o.Identity, o.Source = m.State, m.Site, m.Identity, m.Source
		if o.State == StateUnidentified && o.Identity == "" && r.DNS != nil {
			o.Identity = NoIdentityReason(r.DNS)
		}
	case r.Error != "" && r.Kind != measure.KindPing && r.Kind != measure.KindTrace:
		return o, nil
	default:
		return o, ErrNotIdentity
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

func answered(r *measure.Result) bool {
	switch {
	case r.HTTP != nil:
		return r.HTTP.Status != 0
	case r.NTP != nil:
		return r.NTP.Error == ""
	}
	d := r.DNS
	for i := range d.Exchanges {
		if d.Exchanges[i].Error == "" {
			return true
		}
	}
	// An identity without exchanges (hand-built results) is still an answer.
	return len(d.Exchanges) == 0 && !d.Identity.Empty()
}
