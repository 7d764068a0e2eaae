package catchment

// The configuration of a catchment: targets, their sites and identity
// rules, one definition with one validation for the API, the admin CLI,
// the collector and the store.

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// targetName is the shape the schema accepts for a target name.
var targetName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// InvalidError says which field of a target, site or rule is wrong and
// why, in words an operator can act on. Field is the field's JSON name.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Target is one anycast service: its addresses, what probes measure
// towards them and how often, and which identity sources name its sites.
type Target struct {
	ID            int            `json:"id"`
	Name          string         `json:"name"`
	Description   string         `json:"description"`
	Addr4         string         `json:"addr4,omitempty"`
	Addr6         string         `json:"addr6,omitempty"`
	IntervalSec   int            `json:"interval_sec"`
	Specs         []measure.Spec `json:"specs"`
	IdentityOrder []string       `json:"identity_order"` // sources in order (see ValidOrderSource)
	Enabled       bool           `json:"enabled"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// Validate checks what the schema would refuse, and more, in the order
// the API reports it: the name, the addresses (at least one), the
// interval (10 s to a day), the measurement kinds and the identity
// sources. The error is an *InvalidError.
func (t *Target) Validate() error {
	if !targetName.MatchString(t.Name) {
		return invalid("name", "target names are 1-63 characters of a-z, 0-9, '.', '_' and '-'")
	}
	if t.Addr4 != "" && !isAddr(t.Addr4, 4) {
		return invalid("addr4", "not an IPv4 address")
	}
	if t.Addr6 != "" && !isAddr(t.Addr6, 6) {
		return invalid("addr6", "not an IPv6 address")
	}
	if t.IntervalSec < 10 || t.IntervalSec > 86400 {
		return invalid("interval_sec", "want 10 to 86400 seconds")
	}
	for _, sp := range t.Specs {
		if !sp.Kind.Valid() {
			return invalid("specs", "unknown measurement kind %q", sp.Kind)
		}
	}
	for _, src := range t.IdentityOrder {
		if !ValidOrderSource(src) {
			return invalid("identity_order", "unknown identity source %q", src)
		}
	}
	if t.Addr4 == "" && t.Addr6 == "" {
		return invalid("addr4", "a target needs addr4 or addr6")
	}
	return nil
}

// Site is one location announcing a target.
type Site struct {
	Code     string   `json:"code"`
	Name     string   `json:"name"`
	Lat      *float64 `json:"lat"`
	Lon      *float64 `json:"lon"`
	Unicast4 string   `json:"unicast4,omitempty"`
	Unicast6 string   `json:"unicast6,omitempty"`
}

// Validate checks the code, position and unicast addresses of s. The
// error is an *InvalidError.
func (s *Site) Validate() error {
	switch {
	case !siteCode.MatchString(s.Code):
		return invalid("code", "site codes are 1-32 characters of a-z, 0-9, '.', '_' and '-'")
	case s.Lat != nil && (*s.Lat < -90 || *s.Lat > 90):
		return invalid("lat", "want -90 to 90")
	case s.Lon != nil && (*s.Lon < -180 || *s.Lon > 180):
		return invalid("lon", "want -180 to 180")
	case s.Unicast4 != "" && !isAddr(s.Unicast4, 4):
		return invalid("unicast4", "not an IPv4 address")
	case s.Unicast6 != "" && !isAddr(s.Unicast6, 6):
		return invalid("unicast6", "not an IPv6 address")
	}
	return nil
}

// Validate checks that r compiles: a known source and match kind, a
// valid site code, a pattern (a regex with at most one site group).
func (r *Rule) Validate() error {
	_, err := compileRule(*r)
	return err
}

// ValidateRules checks a target's identity order and rules together, as
// [NewIdentifier] compiles them; the error names every bad one.
func ValidateRules(order []string, rules []Rule) error {
	_, err := NewIdentifier(order, rules)
	return err
}

// isAddr tells whether s is an address of family af (4 or 6) without a
// zone; an IPv4-mapped IPv6 address is neither.
func isAddr(s string, af int) bool {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return false
	}
	if af == 4 {
		return a.Is4()
	}
	return a.Is6() && !a.Is4In6()
}
