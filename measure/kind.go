package measure

import "fmt"

// Version is the current result wire-format version.
const Version = 1

// Kind names a type of measurement.
type Kind string

const (
	KindPing     Kind = "ping"
	KindTrace    Kind = "trace"
	KindDNS      Kind = "dns"      // one DNS query of any class/type
	KindIdentity Kind = "identity" // CHAOS hostname.bind + id.server + NSID in one measurement
	KindHTTP     Kind = "http"     // one HTTP(S) request; identity from response headers or body
	KindNTP      Kind = "ntp"      // one NTPv4 client query; identity from the reference id
)

// Kinds lists every known kind in a stable order.
var Kinds = []Kind{KindPing, KindTrace, KindDNS, KindIdentity, KindHTTP, KindNTP}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindPing, KindTrace, KindDNS, KindIdentity, KindHTTP, KindNTP:
		return true
	}
	return false
}

// ParseKind returns the kind named s or an error listing the valid kinds.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if !k.Valid() {
		return "", fmt.Errorf("unknown measurement kind %q (want ping, trace, dns, identity, http or ntp)", s)
	}
	return k, nil
}
