package catchment

// Identity sources a rule can look at, in the names used by the schema,
// the API and the rules files.
const (
	SourceHostnameBind = "hostname_bind"
	SourceIDServer     = "id_server"
	SourceNSID         = "nsid"
	SourceAny          = "any" // any of the three DNS identity strings

	// Sources beyond DNS CHAOS. A rule names one header as
	// "http_header:<name>" (name lowercase); identity orders name the
	// family, "http_header".
	SourceHTTPHeader = "http_header"
	SourceHTTPBody   = "http_body"   // body of a plain-text trace endpoint (e.g. Cloudflare /cdn-cgi/trace)
	SourceNTPRefID   = "ntp_refid"   // NTP reference id as text
	SourceEgressAddr = "egress_addr" // a resolver's egress address (TXT o-o.myaddr.l.google.com, A whoami.akamai.net)
	SourceTraceHop   = "trace_hop"   // an address of the last responding hops before the anycast address
)

// Rule maps a server identity to a site. Rules of a target are tried in
// order; the first that matches wins.
type Rule struct {
	Source  string `json:"source" yaml:"source"`                 // one of the Source* constants
	Match   string `json:"match" yaml:"match"`                   // "regex", "exact" or "prefix" (egress_addr, trace_hop)
	Pattern string `json:"pattern" yaml:"pattern"`               // regex with a (?P<site>…) group, the exact identity, or a CIDR prefix
	Site    string `json:"site,omitempty" yaml:"site,omitempty"` // site code for exact rules, or a fixed code for a regex without a site group
	Note    string `json:"note,omitempty" yaml:"note,omitempty"` // source/date of the rule, free text
}
