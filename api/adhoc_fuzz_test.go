package api

import (
	"context"
	"net/netip"
	"testing"

	"github.com/anycatch/anycatch/measure"
)

// FuzzAdhocAddress: whatever an admin sends as "address", adhocAddrs
// answers an error or at most one valid, zoneless address per family of
// the requested af; a hostname never yields a special-purpose address.
func FuzzAdhocAddress(f *testing.F) {
	for _, seed := range []struct {
		addr string
		af   int
	}{
		{"198.51.100.7", 0},          // documentation literal: passed on, the probes decide
		{"::ffff:127.0.0.1", 4},      // mapped loopback: judged as IPv4
		{"fe80::1%eth0", 0},          // zone: refused
		{"anycast.test.", 6},         // hostname with the root dot
		{"-bad-.test", 0},            // label starting with a hyphen
		{"a..b", 0},                  // empty label
		{"xn--bcher-kva.test", 4},    // punycode
		{"", 0},                      // empty
		{"1.2.3.4.5", 0},             // not an address, but a valid name
		{"2001:db8::1:2:3:4:5:6", 6}, // too many groups
	} {
		f.Add(seed.addr, seed.af)
	}
	resolved := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("193.0.14.129"),
		netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("2001:7fd::1"), netip.MustParseAddr("::ffff:192.168.1.1")}
	s := &Server{cfg: Config{Resolve: func(context.Context, string) ([]netip.Addr, error) { return resolved, nil }}}
	f.Fuzz(func(t *testing.T, addr string, af int) {
		out, err := s.adhocAddrs(context.Background(), MeasurementInput{Address: addr, AF: af})
		if err != nil {
			return
		}
		_, literal := netip.ParseAddr(addr)
		seen := map[bool]bool{}
		for _, a := range out {
			if !a.IsValid() || a.Zone() != "" || seen[a.Is4()] {
				t.Fatalf("%q af %d: addresses %v", addr, af, out)
			}
			seen[a.Is4()] = true
			if af == 4 && !a.Is4() || af == 6 && !a.Is6() {
				t.Fatalf("%q af %d: wrong family %v", addr, af, out)
			}
			if _, _, special := measure.SpecialRange(a); special && literal != nil {
				t.Fatalf("hostname %q yielded special address %s", addr, a)
			}
		}
		if len(out) == 0 {
			t.Fatalf("%q af %d: no error and no address", addr, af)
		}
	})
}
