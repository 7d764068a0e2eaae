package catchment

// Identity sources a rule can look at, in the names used by the schema,
// the API and the rules files.
const (
	SourceHostnameBind = "hostname_bind"
	SourceIDServer     = "id_server"
	SourceNSID         = "nsid"
	SourceAny          = "any"
)

// Rule maps a server identity to a site. Rules of a target are tried in
// order; the first that matches wins.
type Rule struct {
	Source  string `json:"source" yaml:"source"`                 // one of the Source* constants
	Match   string `json:"match" yaml:"match"`                   // "regex" or "exact"
	Pattern string `json:"pattern" yaml:"pattern"`               // regex with a (?P<site>…) group, or the exact identity
	Site    string `json:"site,omitempty" yaml:"site,omitempty"` // site code for exact rules, or a fixed code for a regex without a site group
	Note    string `json:"note,omitempty" yaml:"note,omitempty"` // source/date of the rule, free text
}
