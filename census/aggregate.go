package census

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// Row is one network's reply in a round as the server stored it: which
// site received it and what geolocation knows about the address.
type Row struct {
	Prefix  netip.Prefix
	Site    string
	ASN     int64  // 0: unknown
	Country string // "": unknown
	Late    bool   // received after the round closed
	RTTMS   *float64
}

// Count is a number of prefixes under a key (an ASN or a country code).
type Count struct {
	Key      string `json:"key"`
	Prefixes int    `json:"prefixes"`
}

// SiteSummary is one site's catchment in a round.
type SiteSummary struct {
	Site      string  `json:"site"`
	Prefixes  int     `json:"prefixes"`
	ByASN     []Count `json:"by_asn"`
	ByCountry []Count `json:"by_country"`
}

// Summary is a round's catchment by site.
type Summary struct {
	Prefixes  int           `json:"prefixes"`   // distinct prefixes that replied
	MultiSite int           `json:"multi_site"` // prefixes whose replies reached more than one site
	Late      int           `json:"late"`       // replies received after the round closed (counted like the others)
	Sites     []SiteSummary `json:"sites"`
}

// Catchment maps each prefix to its site. A prefix whose replies reached
// several sites (per-packet load balancing somewhere on the path) maps to
// their codes joined by "+" in order.
func Catchment(rows []Row) map[netip.Prefix]string {
	sets := map[netip.Prefix][]string{}
	for _, r := range rows {
		if !slices.Contains(sets[r.Prefix], r.Site) {
			sets[r.Prefix] = append(sets[r.Prefix], r.Site)
		}
	}
	out := make(map[netip.Prefix]string, len(sets))
	for p, s := range sets {
		slices.Sort(s)
		out[p] = strings.Join(s, "+")
	}
	return out
}

// Summarize counts a round's prefixes per site, and per ASN and country
// within each site (largest first). A multi-site prefix counts at each of
// its sites.
func Summarize(rows []Row) Summary {
	var s Summary
	type key struct {
		p    netip.Prefix
		site string
	}
	seen := map[key]bool{}
	sitesOf := map[netip.Prefix]int{}
	bySite := map[string]*siteAcc{}
	for _, r := range rows {
		if r.Late {
			s.Late++
		}
		k := key{r.Prefix, r.Site}
		if seen[k] {
			continue
		}
		seen[k] = true
		sitesOf[r.Prefix]++
		a := bySite[r.Site]
		if a == nil {
			a = &siteAcc{asn: map[string]int{}, cc: map[string]int{}}
			bySite[r.Site] = a
		}
		a.n++
		asn := "unknown"
		if r.ASN > 0 {
			asn = "AS" + itoa(r.ASN)
		}
		cc := r.Country
		if cc == "" {
			cc = "unknown"
		}
		a.asn[asn]++
		a.cc[cc]++
	}
	s.Prefixes = len(sitesOf)
	for _, n := range sitesOf {
		if n > 1 {
			s.MultiSite++
		}
	}
	for site, a := range bySite {
		s.Sites = append(s.Sites, SiteSummary{Site: site, Prefixes: a.n, ByASN: counts(a.asn), ByCountry: counts(a.cc)})
	}
	slices.SortFunc(s.Sites, func(a, b SiteSummary) int {
		return cmp.Or(cmp.Compare(b.Prefixes, a.Prefixes), cmp.Compare(a.Site, b.Site))
	})
	return s
}

type siteAcc struct {
	n       int
	asn, cc map[string]int
}

func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{Key: k, Prefixes: n})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Prefixes, a.Prefixes), cmp.Compare(a.Key, b.Key)) })
	return out
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}

// Move is a prefix whose site differs between two rounds. From or To is
// "" when the prefix replied in only one of them.
type Move struct {
	Prefix netip.Prefix `json:"prefix"`
	From   string       `json:"from"`
	To     string       `json:"to"`
}

// Diff lists the prefixes whose catchment changed from prev to cur, in
// prefix order.
func Diff(prev, cur []Row) []Move {
	a, b := Catchment(prev), Catchment(cur)
	var out []Move
	for p, s := range b {
		if a[p] != s {
			out = append(out, Move{Prefix: p, From: a[p], To: s})
		}
	}
	for p, s := range a {
		if _, ok := b[p]; !ok {
			out = append(out, Move{Prefix: p, From: s})
		}
	}
	slices.SortFunc(out, func(x, y Move) int {
		return cmp.Or(x.Prefix.Addr().Compare(y.Prefix.Addr()), cmp.Compare(x.Prefix.Bits(), y.Prefix.Bits()))
	})
	return out
}
