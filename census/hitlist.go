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
	Addrs []netip.Addr
	HitlistStats
}

// HitlistStats counts what a hitlist scan kept and dropped.
type HitlistStats struct {
	Listed     int // addresses kept
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

// ParseHitlist reads a whole hitlist into memory (see [ScanHitlist]);
// fine for small lists and tests, senders stream.
func ParseHitlist(r io.Reader, bits4, bits6 int, optOut *OptOut) (*Hitlist, error) {
	h := &Hitlist{}
	st, err := ScanHitlist(r, bits4, bits6, optOut, func(a netip.Addr) error {
		h.Addrs = append(h.Addrs, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.HitlistStats = st
	return h, nil
}

// ScanHitlist reads one address per line ('#' starts a comment, blank
// lines are skipped), keeps the first address of each prefix (/bits4,
// /bits6), drops addresses the opt-out list covers, and calls fn (when
// not nil) with each kept address in file order, stopping at fn's first
// error. A malformed line is an error naming it; nothing is guessed.
//
// Memory does not grow with the list except for the set of IPv6 prefixes
// (and IPv4 prefixes longer than /24): IPv4 prefixes up to /24 are a
// bitmap of at most 2 MiB, so a full IPv4 hitlist streams.
func ScanHitlist(r io.Reader, bits4, bits6 int, optOut *OptOut, fn func(netip.Addr) error) (HitlistStats, error) {
	var st HitlistStats
	if bits4 < 8 || bits4 > 32 || bits6 < 16 || bits6 > 128 {
		return st, fmt.Errorf("hitlist: prefix lengths /%d and /%d out of range (IPv4 8-32, IPv6 16-128)", bits4, bits6)
	}
	var bitmap []uint64 // IPv4 prefixes by number, when bits4 <= 24
	seen := map[netip.Prefix]struct{}{}
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
			st.OptedOut++
			return nil
		}
		if a.Is4() && bits4 <= 24 {
			if bitmap == nil {
				bitmap = make([]uint64, (1<<bits4+63)/64)
			}
			b := a.As4()
			i := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) >> (32 - bits4)
			if bitmap[i/64]&(1<<(i%64)) != 0 {
				st.Duplicates++
				return nil
			}
			bitmap[i/64] |= 1 << (i % 64)
		} else {
			p := Prefix(a, bits4, bits6)
			if _, dup := seen[p]; dup {
				st.Duplicates++
				return nil
			}
			seen[p] = struct{}{}
		}
		st.Listed++
		if fn != nil {
			return fn(a)
		}
		return nil
	})
	return st, err
}

// usable refuses addresses a census must never probe: multicast,
// unspecified, broadcast and link-local ones.
func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLinkLocalUnicast() &&
		!a.IsInterfaceLocalMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// OptOut is a set of prefixes that must never be probed. The nil OptOut
// contains nothing. Lookups cost one map probe per distinct prefix length
// in the list, however long it is.
type OptOut struct {
	n      int
	sets   map[netip.Prefix]struct{}
	lens4  []int
	lens6  []int
	hasLen map[[2]int]bool // (family, length) already in lens4/lens6
}

// ParseOptOut reads one address or prefix per line ('#' comments).
func ParseOptOut(r io.Reader) (*OptOut, error) {
	o := &OptOut{sets: map[netip.Prefix]struct{}{}, hasLen: map[[2]int]bool{}}
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
		o.add(p.Masked())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

func (o *OptOut) add(p netip.Prefix) {
	o.n++
	o.sets[p] = struct{}{}
	fam := 6
	if p.Addr().Is4() {
		fam = 4
	}
	if k := [2]int{fam, p.Bits()}; !o.hasLen[k] {
		o.hasLen[k] = true
		if fam == 4 {
			o.lens4 = append(o.lens4, p.Bits())
		} else {
			o.lens6 = append(o.lens6, p.Bits())
		}
	}
}

// Len is the number of opt-out entries.
func (o *OptOut) Len() int {
	if o == nil {
		return 0
	}
	return o.n
}

// Contains reports whether a is opted out.
func (o *OptOut) Contains(a netip.Addr) bool {
	if o == nil {
		return false
	}
	a = a.Unmap()
	lens := o.lens6
	if a.Is4() {
		lens = o.lens4
	}
	for _, l := range lens {
		p, err := a.Prefix(l)
		if err != nil {
			continue
		}
		if _, ok := o.sets[p]; ok {
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
