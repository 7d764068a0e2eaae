package measure

import (
	"net/netip"
	"testing"
)

// TestSpecialRangeEmbeddedIPv4: NAT64, IPv4-mapped and IPv4-compatible
// forms are judged by the IPv4 address they carry (or refused whole).
func TestSpecialRangeEmbeddedIPv4(t *testing.T) {
	for _, c := range []struct {
		name   string
		addr   string
		ok     bool   // refused
		reason string // exact reason when refused
	}{
		{"NAT64 loopback", "64:ff9b::7f00:1", true, "NAT64 address embedding loopback 127.0.0.1"},
		{"NAT64 private", "64:ff9b::10.0.0.1", true, "NAT64 address embedding private 10.0.0.1"},
		{"NAT64 link-local metadata", "64:ff9b::169.254.169.254", true, "NAT64 address embedding link-local 169.254.169.254"},
		{"NAT64 global allowed", "64:ff9b::8.8.8.8", false, ""},
		{"NAT64 local-use refused whole", "64:ff9b:1::8.8.8.8", true, "NAT64 local-use (private, RFC 8215)"},
		{"IPv4-mapped private", "::ffff:10.0.0.1", true, "private"},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1", true, "loopback"},
		{"IPv4-mapped global allowed", "::ffff:8.8.8.8", false, ""},
		{"IPv4-compatible global refused", "::8.8.8.8", true, "IPv4-compatible (deprecated)"},
		{"IPv4-compatible loopback refused", "::127.0.0.1", true, "IPv4-compatible (deprecated)"},
		{"unspecified still unspecified", "::", true, "unspecified or \"this network\""},
		{"IPv6 loopback still loopback", "::1", true, "loopback"},
		{"global IPv6 allowed", "2a00:1450::1", false, ""},
	} {
		reason, p, ok := SpecialRange(netip.MustParseAddr(c.addr))
		if ok != c.ok || reason != c.reason {
			t.Errorf("%s: SpecialRange(%s): got (%q, %v), want (%q, %v)", c.name, c.addr, reason, ok, c.reason, c.ok)
		}
		if ok && !p.Contains(netip.MustParseAddr(c.addr).Unmap()) {
			t.Errorf("%s: SpecialRange(%s): got range %s, want one containing the address", c.name, c.addr, p)
		}
	}
}

// FuzzSpecialRange: never panics, a refusal always names a range holding
// the (unmapped) address, and a NAT64 address is refused exactly when its
// embedded IPv4 address is.
func FuzzSpecialRange(f *testing.F) {
	for _, s := range []string{"64:ff9b::7f00:1", "64:ff9b::8.8.8.8", "64:ff9b:1::1", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "::8.8.8.8", "::", "::1", "8.8.8.8", "fe80::1%eth0"} {
		a := netip.MustParseAddr(s)
		b := a.As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		reason, p, special := SpecialRange(a)
		if special && (reason == "" || !p.Contains(a.Unmap())) {
			t.Fatalf("SpecialRange(%s): got (%q, %s), want a reason and a range holding it", a, reason, p)
		}
		if a.Is6() && nat64.Contains(a) {
			b := a.As16()
			_, _, want := SpecialRange(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
			if special != want {
				t.Fatalf("SpecialRange(%s): got special=%v, want %v as for the embedded IPv4", a, special, want)
			}
		}
	})
}
