package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Truth is the catchment the routers hold right now: for every client,
// which site its BGP best path leads to and the RTT the configured link
// delays imply.
type Truth struct {
	Time    time.Time     `json:"time"`
	Clients []ClientTruth `json:"clients"`
}

// ClientTruth is one client's view of the anycast service.
type ClientTruth struct {
	Client string    `json:"client"`
	Region string    `json:"region"`
	V4     PathTruth `json:"v4"`
	V6     PathTruth `json:"v6"`
}

// PathTruth is one address family's route to the anycast address.
type PathTruth struct {
	// Site is the site code the best path leads to; "" when there is no
	// route.
	Site string `json:"site"`
	// ASPath is the BGP AS path at the client's transit (neighbor first,
	// origin last, prepends included).
	ASPath []uint32 `json:"as_path"`
	// Forward and Return list the nodes packets cross, client to site and
	// site to client.
	Forward []string `json:"forward"`
	Return  []string `json:"return"`
	// ExpectedRTT is the sum of the one-way link delays along Forward and
	// Return (the delay forwarder adds well under a millisecond).
	ExpectedRTT Duration `json:"expected_rtt"`
}

// Client returns the entry for a client.
func (t Truth) Client(name string) (ClientTruth, bool) {
	for _, c := range t.Clients {
		if c.Client == name {
			return c, true
		}
	}
	return ClientTruth{}, false
}

// Complete reports whether every client has a route in both families.
func (t Truth) Complete() bool {
	for _, c := range t.Clients {
		if c.V4.Site == "" || c.V6.Site == "" {
			return false
		}
	}
	return len(t.Clients) > 0
}

func (t Truth) sameCatchment(u Truth) bool {
	if len(t.Clients) != len(u.Clients) {
		return false
	}
	for i := range t.Clients {
		a, b := t.Clients[i], u.Clients[i]
		if a.V4.Site != b.V4.Site || a.V6.Site != b.V6.Site ||
			fmt.Sprint(a.V4.ASPath, a.V6.ASPath) != fmt.Sprint(b.V4.ASPath, b.V6.ASPath) {
			return false
		}
	}
	return true
}

// birdRoute is the part of "show route for X primary all" truth needs.
type birdRoute struct {
	Found  bool
	Proto  string
	ASPath []uint32
}

// parseBirdRoute reads birdc output of "show route for ADDR primary all".
func parseBirdRoute(out string) (birdRoute, error) {
	var r birdRoute
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "Network not found"):
			return birdRoute{}, nil
		case strings.HasPrefix(trim, "BGP.as_path:"):
			for _, f := range strings.Fields(strings.TrimPrefix(trim, "BGP.as_path:")) {
				f = strings.Trim(f, "{}")
				if f == "" {
					continue
				}
				asn, err := strconv.ParseUint(f, 10, 32)
				if err != nil {
					return birdRoute{}, fmt.Errorf("bad as_path element %q", f)
				}
				r.ASPath = append(r.ASPath, uint32(asn))
			}
		case !r.Found && line != "" && line[0] != '\t' && line[0] != ' ' && strings.Contains(line, "unicast ["):
			r.Found = true
			i := strings.Index(line, "unicast [") + len("unicast [")
			if f := strings.Fields(line[i:]); len(f) > 0 {
				r.Proto = strings.TrimSuffix(f[0], "]")
			}
		}
	}
	return r, sc.Err()
}

// dedupPath drops AS prepends: 65101 65001 65001 -> 65101 65001.
func dedupPath(p []uint32) []uint32 {
	var out []uint32
	for _, a := range p {
		if len(out) == 0 || out[len(out)-1] != a {
			out = append(out, a)
		}
	}
	return out
}

// Truth reads, for every client, the best route to the anycast addresses
// at the client's transit and the site's best route back to the client.
func (l *Lab) Truth(ctx context.Context) (Truth, error) {
	cache := map[[2]string]birdRoute{}
	lookup := func(node, addr string) (birdRoute, error) {
		k := [2]string{node, addr}
		if r, ok := cache[k]; ok {
			return r, nil
		}
		out, err := l.birdc(ctx, node, "show", "route", "for", addr, "primary", "all")
		if err != nil {
			return birdRoute{}, err
		}
		r, err := parseBirdRoute(out)
		if err != nil {
			return birdRoute{}, fmt.Errorf("birdc on %s: %w", node, err)
		}
		cache[k] = r
		return r, nil
	}
	t := Truth{Time: time.Now().UTC()}
	for _, c := range l.topo.Clients {
		n, _ := l.plan.Node(c.Name)
		ct := ClientTruth{Client: c.Name, Region: c.Region}
		for _, fam := range []struct {
			dst, src netip.Addr
			out      *PathTruth
		}{{l.topo.Anycast.V4, n.V4, &ct.V4}, {l.topo.Anycast.V6, n.V6, &ct.V6}} {
			pt, err := l.pathTruth(c.Name, c.Transit, fam.dst, fam.src, lookup)
			if err != nil {
				return Truth{}, fmt.Errorf("truth for %s: %w", c.Name, err)
			}
			*fam.out = pt
		}
		t.Clients = append(t.Clients, ct)
	}
	return t, nil
}

func (l *Lab) pathTruth(client, transit string, dst, src netip.Addr, lookup func(node, addr string) (birdRoute, error)) (PathTruth, error) {
	var pt PathTruth
	fwd, err := lookup(transit, dst.String())
	if err != nil || !fwd.Found || len(fwd.ASPath) == 0 {
		return pt, err
	}
	pt.ASPath = fwd.ASPath
	pt.Forward = []string{client, transit}
	for _, asn := range dedupPath(fwd.ASPath) {
		n, ok := l.plan.NodeByASN(asn)
		if !ok {
			return PathTruth{}, fmt.Errorf("as path %v: unknown AS%d", fwd.ASPath, asn)
		}
		pt.Forward = append(pt.Forward, n.Name)
	}
	site := pt.Forward[len(pt.Forward)-1]
	if n, _ := l.plan.Node(site); n.Kind != KindSite {
		return PathTruth{}, fmt.Errorf("as path %v: origin %s is not a site", fwd.ASPath, site)
	}
	pt.Site = site
	back, err := lookup(site, src.String())
	if err != nil {
		return PathTruth{}, err
	}
	if back.Found {
		pt.Return = []string{site}
		for _, asn := range dedupPath(back.ASPath) {
			n, ok := l.plan.NodeByASN(asn)
			if !ok {
				return PathTruth{}, fmt.Errorf("return as path %v: unknown AS%d", back.ASPath, asn)
			}
			pt.Return = append(pt.Return, n.Name)
		}
		pt.Return = append(pt.Return, client)
	}
	rtt, err := l.pathDelay(pt.Forward)
	if err != nil {
		return PathTruth{}, err
	}
	ret, err := l.pathDelay(pt.Return)
	if err != nil {
		return PathTruth{}, err
	}
	pt.ExpectedRTT = Duration(rtt + ret)
	return pt, nil
}

// pathDelay sums the one-way delays along a node path.
func (l *Lab) pathDelay(nodes []string) (time.Duration, error) {
	var d time.Duration
	for i := 0; i+1 < len(nodes); i++ {
		k, ok := l.plan.Link(nodes[i], nodes[i+1])
		if !ok {
			return 0, fmt.Errorf("path %v: no link %s-%s", nodes, nodes[i], nodes[i+1])
		}
		d += k.Delay(nodes[i])
	}
	return d, nil
}

// Identity is what a site's DNS server says about itself.
type Identity struct {
	Rcode    string `json:"rcode"`              // of the CHAOS query, e.g. NOERROR, REFUSED
	Hostname string `json:"hostname,omitempty"` // CHAOS TXT hostname.bind
	NSID     string `json:"nsid,omitempty"`     // EDNS NSID, decoded
}

// QueryIdentity asks server (normally the anycast address) for
// hostname.bind CH TXT with the NSID option, from a socket inside node's
// namespace: it measures from the lab, never from the host.
func (l *Lab) QueryIdentity(ctx context.Context, node string, server netip.Addr) (Identity, error) {
	ns := l.Namespace(node)
	if ns == "" {
		return Identity{}, fmt.Errorf("query identity: unknown node %q", node)
	}
	var conn net.Conn
	err := inNetns(ns, func() error {
		var err error
		conn, err = net.Dial("udp", netip.AddrPortFrom(server, 53).String())
		return err
	})
	if err != nil {
		return Identity{}, fmt.Errorf("query identity: %w", err)
	}
	defer conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	m := new(dns.Msg)
	m.SetQuestion("hostname.bind.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	m.SetEdns0(1232, false)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	c := &dns.Client{Net: "udp"}
	resp, _, err := c.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn})
	if err != nil {
		return Identity{}, fmt.Errorf("query identity from %s: %w", node, err)
	}
	id := Identity{Rcode: dns.RcodeToString[resp.Rcode]}
	for _, rr := range resp.Answer {
		if txt, ok := rr.(*dns.TXT); ok && len(txt.Txt) > 0 {
			id.Hostname = strings.Join(txt.Txt, "")
		}
	}
	if o := resp.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if n, ok := e.(*dns.EDNS0_NSID); ok {
				b, err := hexDecode(n.Nsid)
				if err != nil {
					return Identity{}, fmt.Errorf("nsid %q: %w", n.Nsid, err)
				}
				id.NSID = string(b)
			}
		}
	}
	return id, nil
}

func hexDecode(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, errors.New("odd length")
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		out[i] = byte(v)
	}
	return out, nil
}

// SiteForIdentity maps what a DNS server said back to a site code using
// the topology's identities and NSIDs; "" when it matches none (a site
// that hides everything).
func (t *Topology) SiteForIdentity(id Identity) string {
	for _, s := range t.Sites {
		if (id.Hostname != "" && !s.HideIdentity && id.Hostname == s.Identity) || (id.NSID != "" && id.NSID == s.NSID) {
			return s.Code
		}
	}
	return ""
}
