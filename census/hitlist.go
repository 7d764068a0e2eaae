package census

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Hitlist is the list of addresses a round probes, at most one per
// prefix (a /24 for IPv4, a /48 for IPv6 by default).
type Hitlist struct {
	Addrs      []netip.Addr
	Duplicates int // addresses dropped because their prefix was already listed
	OptedOut   int // addresses dropped by the opt-out list
}

// MaxHitlistLine bounds one line of a hitlist or opt-out file.
const MaxHitlistLine = 256

// Prefix returns the census prefix of a: its /bits4 or /bits6.
func Prefix(a netip.Addr, bits4, bits6 int) netip.Prefix {
	a = a.Unmap()
	bits := bits6
	if a.Is4() {
		bits = bits4
	}
	p, _ := a.Prefix(bits)
	return p
}

// ParseHitlist reads one address per line ('#' starts a comment, blank
// lines are skipped), keeps the first address of each prefix (/bits4,
// /bits6) and drops addresses the opt-out list covers. A malformed line is
// an error naming it; nothing is guessed.
func ParseHitlist(r io.Reader, bits4, bits6 int, optOut *OptOut) (*Hitlist, error) {
	if bits4 < 8 || bits4 > 32 || bits6 < 16 || bits6 > 128 {
		return nil, fmt.Errorf("hitlist: prefix lengths /%d and /%d out of range (IPv4 8-32, IPv6 16-128)", bits4, bits6)
	}
	h := &Hitlist{}
	seen := map[netip.Prefix]bool{}
	err := eachLine(r, "hitlist", func(n int, s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("hitlist line %d: %q is not an IP address", n, s)
		}
		a = a.Unmap()
		if !usable(a) {
			return fmt.Errorf("hitlist line %d: %s is not a unicast address", n, a)
		}
		if optOut.Contains(a) {
			h.OptedOut++
			return nil
		}
		p := Prefix(a, bits4, bits6)
		if seen[p] {
			h.Duplicates++
			return nil
		}
		seen[p] = true
		h.Addrs = append(h.Addrs, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// usable refuses addresses a census must never probe: multicast,
// unspecified, broadcast and link-local ones.
func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLinkLocalUnicast() &&
		!a.IsInterfaceLocalMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// OptOut is a set of prefixes that must never be probed. The nil OptOut
// contains nothing.
type OptOut struct{ prefixes []netip.Prefix }

// ParseOptOut reads one address or prefix per line ('#' comments).
func ParseOptOut(r io.Reader) (*OptOut, error) {
	o := &OptOut{}
	err := eachLine(r, "opt-out", func(n int, s string) error {
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
			if err == nil && p.Addr().Is4In6() {
				err = fmt.Errorf("IPv4-mapped prefix")
			}
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			if err == nil && a.Zone() != "" {
				err = fmt.Errorf("zone not allowed")
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return fmt.Errorf("opt-out line %d: %q is not an address or prefix", n, s)
		}
		o.prefixes = append(o.prefixes, p.Masked())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// Len is the number of opt-out entries.
func (o *OptOut) Len() int {
	if o == nil {
		return 0
	}
	return len(o.prefixes)
}

// Contains reports whether a is opted out. Lists are short (tens to
// thousands of entries), so a linear scan is fine.
func (o *OptOut) Contains(a netip.Addr) bool {
	if o == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range o.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func eachLine(r io.Reader, what string, fn func(n int, s string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, MaxHitlistLine), MaxHitlistLine)
	n := 0
	for sc.Scan() {
		n++
		s := sc.Text()
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if err := fn(n, s); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s line %d: %w", what, n+1, err)
	}
	return nil
}
