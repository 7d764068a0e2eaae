package measure

import "net/netip"

// specialRange is one address block that is not globally reachable.
type specialRange struct {
	p      netip.Prefix
	reason string
}

// specialRanges lists address ranges that are not globally reachable (RFC
// 6890 and the IANA special-purpose registries). Measuring them either
// probes the volunteer's own network or is meaningless for anycast
// catchment, so a probe refuses them unless told otherwise, and the API
// keeps only addresses outside them when it resolves a hostname.
var specialRanges = func() []specialRange {
	var out []specialRange
	add := func(reason string, prefixes ...string) {
		for _, s := range prefixes {
			out = append(out, specialRange{netip.MustParsePrefix(s), reason})
		}
	}
	add("unspecified or \"this network\"", "0.0.0.0/8", "::/128")
	add("loopback", "127.0.0.0/8", "::1/128")
	add("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
	add("shared address space (CGNAT)", "100.64.0.0/10")
	add("link-local", "169.254.0.0/16", "fe80::/10")
	add("IETF protocol assignments", "192.0.0.0/24")
	add("documentation", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
	add("benchmarking", "198.18.0.0/15", "2001:2::/48")
	add("6to4 relay anycast (deprecated)", "192.88.99.0/24")
	add("multicast", "224.0.0.0/4", "ff00::/8")
	add("limited broadcast", "255.255.255.255/32")
	add("reserved", "240.0.0.0/4")
	add("discard-only", "100::/64")
	add("NAT64 local-use", "64:ff9b:1::/48")
	add("Teredo", "2001::/32")
	add("ORCHID", "2001:10::/28", "2001:20::/28")
	add("6to4", "2002::/16")
	add("site-local (deprecated)", "fec0::/10")
	add("SRv6 SIDs", "5f00::/16")
	return out
}()

// SpecialRange reports whether a (IPv4-mapped IPv6 judged as IPv4) lies
// in a special-purpose range that is not globally reachable, and which:
// a short reason such as "private" and the range.
func SpecialRange(a netip.Addr) (reason string, p netip.Prefix, ok bool) {
	a = a.Unmap()
	for _, s := range specialRanges {
		if s.p.Contains(a) {
			return s.reason, s.p, true
		}
	}
	return "", netip.Prefix{}, false
}
