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
	add("IPv4-compatible (deprecated)", "::/96")
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
	add("NAT64 local-use (private, RFC 8215)", "64:ff9b:1::/48")
	add("Teredo", "2001::/32")
	add("ORCHID", "2001:10::/28", "2001:20::/28")
	add("6to4", "2002::/16")
	add("site-local (deprecated)", "fec0::/10")
	add("SRv6 SIDs", "5f00::/16")
	return out
}()

// nat64 is the well-known NAT64 prefix (RFC 6052): the last 32 bits are an
// IPv4 address the translator reaches on the IPv6 host's behalf.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// SpecialRange reports whether a lies in a special-purpose range that is
// not globally reachable, and which: a short reason such as "private" and
// the range. Addresses that embed an IPv4 address are judged by it:
//
//   - IPv4-mapped ::ffff:a.b.c.d is judged exactly as a.b.c.d (reason and
//     range are the IPv4 ones); a mapped global address is allowed.
//   - NAT64 64:ff9b::a.b.c.d is refused when a.b.c.d is special, with a
//     reason such as "NAT64 address embedding loopback 127.0.0.1" and the
//     range 64:ff9b::/96; an embedded global address is allowed, since that
//     is how an IPv6-only host reaches the IPv4 Internet.
//   - Local-use NAT64 64:ff9b:1::/48 (RFC 8215) is refused as a whole.
//   - Deprecated IPv4-compatible ::a.b.c.d (::/96) is refused as a whole.
func SpecialRange(a netip.Addr) (reason string, p netip.Prefix, ok bool) {
	a = a.Unmap().WithZone("")
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if r, _, special := SpecialRange(v4); special {
			return "NAT64 address embedding " + r + " " + v4.String(), nat64, true
		}
		return "", netip.Prefix{}, false
	}
	for _, s := range specialRanges {
		if s.p.Contains(a) {
			return s.reason, s.p, true
		}
	}
	return "", netip.Prefix{}, false
}
