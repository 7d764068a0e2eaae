package webhook

import (
	"net/netip"
	"testing"
)

// FuzzCheckAddr: the guard must never panic, and must never allow an
// address that netip classifies as loopback, private, link-local,
// multicast or unspecified, however it is spelled (zones, IPv4-mapped).
func FuzzCheckAddr(f *testing.F) {
	// Seeds: plain v4 and v6 with ports, a zone, an IPv4-mapped loopback,
	// a bare address without port, garbage.
	for _, s := range []string{"127.0.0.1:80", "[::1]:443", "[fe80::1%eth0]:80", "[::ffff:10.0.0.1]:8080", "8.8.8.8", "[2001:db8::1]:1", "x:y:z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckAddr(s)
		if err != nil {
			return
		}
		host := s
		if ap, perr := netip.ParseAddrPort(s); perr == nil {
			host = ap.Addr().String()
		}
		ip, perr := netip.ParseAddr(host)
		if perr != nil {
			return // the port spelling differs from net.SplitHostPort's; the address part was checked
		}
		ip = ip.Unmap().WithZone("")
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			t.Fatalf("CheckAddr(%q) allowed %s", s, ip)
		}
	})
}
