package rulesets

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/anycatch/anycatch/catchment"
)

// EgressEntry is one line of an egress table: a resolver's egress prefix
// and the site (location code) it belongs to.
type EgressEntry struct {
	Prefix netip.Prefix
	Site   string
}

var egressSite = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// maxEgressLines bounds a table (Google publishes a few hundred).
const maxEgressLines = 100000

// ParseEgressTable reads an egress table: one "prefix site" or "site
// prefix" pair per line, as Google's Public DNS FAQ lists its ranges and
// `dig +short TXT locations.publicdns.goog` prints them (surrounding
// quotes are removed). Blank lines and lines starting with '#' or ';' are
// skipped. A prefix listed for two different sites is ambiguous: it is
// left out and returned in conflicts. Entries come back sorted by prefix.
func ParseEgressTable(r io.Reader) (entries []EgressEntry, conflicts []netip.Prefix, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	seen := map[netip.Prefix]string{}
	bad := map[netip.Prefix]bool{}
	n := 0
	for sc.Scan() {
		n++
		if n > maxEgressLines {
			return nil, nil, fmt.Errorf("egress table: more than %d lines", maxEgressLines)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		f := strings.Fields(strings.ReplaceAll(line, `"`, " "))
		if len(f) != 2 {
			return nil, nil, fmt.Errorf("egress table line %d: want a prefix and a site code, got %q", n, line)
		}
		p, perr := netip.ParsePrefix(f[0])
		site := f[1]
		if perr != nil {
			p, perr = netip.ParsePrefix(f[1])
			site = f[0]
		}
		if perr != nil {
			return nil, nil, fmt.Errorf("egress table line %d: no CIDR prefix in %q", n, line)
		}
		if !egressSite.MatchString(site) {
			return nil, nil, fmt.Errorf("egress table line %d: %q is not a site code", n, site)
		}
		p, site = p.Masked(), strings.ToLower(site)
		if prev, ok := seen[p]; ok && prev != site {
			bad[p] = true
		}
		seen[p] = site
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("egress table: %w", err)
	}
	for p, s := range seen {
		if bad[p] {
			conflicts = append(conflicts, p)
			continue
		}
		entries = append(entries, EgressEntry{Prefix: p, Site: s})
	}
	cmp := func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	}
	slices.SortFunc(entries, func(a, b EgressEntry) int { return cmp(a.Prefix, b.Prefix) })
	slices.SortFunc(conflicts, cmp)
	return entries, conflicts, nil
}

// EgressRules turns entries into egress_addr prefix rules, each with note.
func EgressRules(entries []EgressEntry, note string) []catchment.Rule {
	out := make([]catchment.Rule, len(entries))
	for i, e := range entries {
		out[i] = catchment.Rule{Source: catchment.SourceEgressAddr, Match: catchment.MatchPrefix, Pattern: e.Prefix.String(), Site: e.Site, Note: note}
	}
	return out
}
