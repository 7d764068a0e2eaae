package catchment

import (
	"net/netip"
	"strings"

	"github.com/anycatch/anycatch/measure"
)

// Evidence is one identity string a result offers a rule, and the source
// it came from ("hostname_bind", "http_header:cf-ray", "trace_hop", …).
type Evidence struct {
	Source string
	Value  string
}

// MaxTraceHopEvidence is how many of the last responding hops before the
// anycast address a trace offers to trace_hop rules, nearest first: the
// site's own border router is usually the last or the one before it.
const MaxTraceHopEvidence = 3

// Qnames whose answers carry a resolver's egress address.
const (
	QnameGoogleMyAddr = "o-o.myaddr.l.google.com."
	QnameAkamaiWhoami = "whoami.akamai.net."
)

// EvidenceOf lists what r offers identity rules, in the order of the
// payload (DNS identity strings, egress addresses, HTTP headers as kept,
// the body, the NTP reference id, trace hops nearest the destination
// first). Empty values are left out.
func EvidenceOf(r *measure.Result) []Evidence {
	var ev []Evidence
	add := func(src, v string) {
		if v != "" {
			ev = append(ev, Evidence{src, v})
		}
	}
	if d := r.DNS; d != nil {
		if id := d.Identity; id != nil {
			add(SourceHostnameBind, id.HostnameBind)
			add(SourceIDServer, id.IDServer)
			add(SourceNSID, id.NSID)
		}
		for _, a := range EgressAddrs(d) {
			add(SourceEgressAddr, a)
		}
	}
	if h := r.HTTP; h != nil && h.Status != 0 {
		for _, x := range h.Headers {
			add(SourceHTTPHeader+":"+x.Name, x.Value)
		}
		add(SourceHTTPBody, h.Body)
	}
	if n := r.NTP; n != nil && n.Error == "" && n.Kiss == "" {
		add(SourceNTPRefID, n.RefID)
	}
	if t := r.Trace; t != nil {
		for _, a := range LastHops(t, r.Dst, MaxTraceHopEvidence) {
			add(SourceTraceHop, a)
		}
	}
	return ev
}

// EgressAddrs returns the resolver egress addresses in d's answers: TXT
// answers to o-o.myaddr.l.google.com that are an address (Google also
// answers "edns0-client-subnet …", which is not), and A/AAAA answers to
// whoami.akamai.net.
func EgressAddrs(d *measure.DNSResult) []string {
	var out []string
	for _, x := range d.Exchanges {
		if x.Error != "" {
			continue
		}
		q := strings.ToLower(x.QName)
		for _, a := range x.Answers {
			if !strings.EqualFold(a.Name, x.QName) {
				continue
			}
			ok := q == QnameGoogleMyAddr && a.Type == "TXT" ||
				q == QnameAkamaiWhoami && (a.Type == "A" || a.Type == "AAAA")
			if !ok {
				continue
			}
			v := strings.Trim(strings.TrimSpace(a.Data), `"`)
			if addr, err := netip.ParseAddr(v); err == nil {
				out = append(out, addr.Unmap().String())
			}
		}
	}
	return out
}

// LastHops returns up to n distinct addresses of the last responding hops
// of t before dst, nearest dst first. Replies from dst itself are skipped:
// every site answers from the anycast address.
func LastHops(t *measure.TraceResult, dst string, n int) []string {
	d, _ := netip.ParseAddr(dst)
	var out []string
	for i := len(t.Hops) - 1; i >= 0 && len(out) < n; i-- {
		for _, p := range t.Hops[i].Probes {
			if p.Timeout || p.From == "" {
				continue
			}
			a, err := netip.ParseAddr(p.From)
			if err != nil || a.Unmap() == d.Unmap() {
				continue
			}
			s := a.Unmap().String()
			dup := false
			for _, o := range out {
				dup = dup || o == s
			}
			if !dup {
				out = append(out, s)
			}
			break // one address per hop: the first that answered
		}
	}
	return out
}

// Match is what an identifier makes of one result.
type Match struct {
	State    State  // StateSite or StateUnidentified
	Site     string // set for StateSite
	Identity string // the string the site came from; for no match, the strongest one a rule looks at
	// Source is where Identity came from ("hostname_bind",
	// "http_header:cf-ray", …): the source that named the site, or for no
	// match the source of the unmapped identity; "" when there is none.
	Source string
}

// IdentifyResult maps everything r offers to a site. Sources are tried in
// the identifier's order (DNS identity strings first by default, trace
// hops last), so a weaker source never overrides a stronger one within a
// result; for each source the rules are tried in their order and the first
// match wins.
func (idf *Identifier) IdentifyResult(r *measure.Result) Match {
	var m Match
	if r.DNS != nil && !r.DNS.Identity.Empty() {
		st, site, ident, by, ok := idf.identifyDNS(r.DNS.Identity)
		if st == StateSite {
			return Match{State: st, Site: site, Identity: ident, Source: by.String()}
		}
		if ok {
			m.Identity, m.Source = ident, by.String()
		}
	}
	ev := EvidenceOf(r)
	for _, src := range idf.order {
		if src <= srcNSID {
			continue // done above
		}
		for _, e := range ev {
			family, header, _ := strings.Cut(e.Source, ":")
			if family != src.String() {
				continue
			}
			for i := range idf.rules {
				rl := &idf.rules[i]
				if rl.src != src || rl.header != header {
					continue
				}
				// Only a value some rule looks at is worth surfacing as
				// unmapped (not the Date header of every HTTP reply).
				if m.Identity == "" {
					m.Identity, m.Source = clip(e.Value), e.Source
				}
				if s, ok := rl.match(e.Value); ok {
					ident := e.Value
					if src == srcHTTPBody && rl.re != nil {
						ident = rl.re.FindString(e.Value) // the line that named the site, not the whole body
					}
					return Match{State: StateSite, Site: s, Identity: clip(ident), Source: e.Source}
				}
			}
		}
	}
	m.State = StateUnidentified
	return m
}

// maxIdentity bounds an identity string taken from a header or body, so a
// result row stays small.
const maxIdentity = 256

func clip(s string) string {
	if len(s) <= maxIdentity {
		return s
	}
	return strings.ToValidUTF8(s[:maxIdentity], "")
}
