package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// The fixed address plan. Everything is inside the lab ranges
// 198.18.0.0/15, 100.64.0.0/10 and 2001:db8::/32.
var (
	planRouterIDV4 = netip.MustParsePrefix("198.18.0.0/24")    // router IDs: .N for node N
	planClientV4   = netip.MustParsePrefix("198.18.128.0/17")  // client i: 198.18.(128+i).0/24
	planClientV6   = netip.MustParsePrefix("2001:db8:c1::/48") // client i: 2001:db8:c1:i::/64
	planLinkV4     = netip.MustParsePrefix("100.64.0.0/10")    // link j: 100.64.0.0 + 4j /30
	planLinkV6     = netip.MustParsePrefix("2001:db8:ff::/48") // link j: 2001:db8:ff:j::/64
	planMgmtV4     = netip.MustParsePrefix("198.19.255.0/24")  // .1 bridge, client i: .(10+i)
	planExtraV4    = netip.MustParsePrefix("198.19.0.0/16")    // client i, extra net k (1, 2): 198.19.(2i+k-1).0/24, at most 198.19.239 (below mgmt)
	planExtraV6    = netip.MustParsePrefix("2001:db8:c2::/48") // client i, extra net k: 2001:db8:c2:(2i+k-1)::/64
)

// Node kinds.
const (
	KindSite    = "site"
	KindTransit = "transit"
	KindClient  = "client"
)

// Plan is the concrete layout of one lab instance: namespaces, interface
// names and addresses. It is a pure function of the topology and the
// instance name.
type Plan struct {
	Name     string
	Nodes    []PlanNode // sites, then transits, then clients
	Links    []PlanLink // router links in topology order, then client access links
	MgmtNS   string
	MgmtAddr netip.Addr // the mgmt bridge address; the collector forwarder listens here
	byName   map[string]int
}

// PlanNode is one namespace.
type PlanNode struct {
	Name     string
	Kind     string
	ASN      uint32     // 0 for clients
	RouterID netip.Addr // 198.18.0.N
	NS       string     // "<instance>-<name>"
	// Client-only addresses.
	V4, V6   netip.Addr // on the uplink
	GW4, GW6 netip.Addr // the transit's end of the uplink
	Mgmt     netip.Addr // on the mgmt interface, in MgmtPrefix
	Transit  string
	// Extra client networks (Client.Nets - 1 of them): the client's
	// address in each, on the uplink next to V4/V6; the transit holds .1
	// / ::1 and announces them.
	Extra4, Extra6 []netip.Addr
}

// PlanLink is one point-to-point link: a veth pair, or two TUN devices
// joined by a delay forwarder when either direction has a delay.
type PlanLink struct {
	Index            int
	A, B             string // node names; for access links A is the transit, B the client
	IfA, IfB         string
	A4, B4, A6, B6   netip.Prefix // interface addresses with prefix length
	DelayAB, DelayBA time.Duration
	Access           bool
}

// TUN reports whether the link needs the delay forwarder.
func (l PlanLink) TUN() bool { return l.DelayAB > 0 || l.DelayBA > 0 }

// Delay returns the one-way delay from node from across the link.
func (l PlanLink) Delay(from string) time.Duration {
	if from == l.A {
		return l.DelayAB
	}
	return l.DelayBA
}

// MgmtPrefix is the management network reaching every client.
var MgmtPrefix = planMgmtV4

var instanceRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// ValidName checks an instance name: 1-8 of [a-z0-9], starting with a
// letter. Namespaces are "<name>-<node>".
func ValidName(name string) error {
	if !instanceRE.MatchString(name) {
		return fmt.Errorf("instance name %q: must be 1-8 of [a-z0-9], starting with a letter", name)
	}
	return nil
}

// Plan lays out t for instance name. t must be valid.
func (t *Topology) Plan(name string) (*Plan, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	p := &Plan{Name: name, MgmtNS: name + "-mgmt", MgmtAddr: nthAddr(planMgmtV4.Addr(), 1), byName: map[string]int{}}
	add := func(n PlanNode) {
		n.RouterID = nthAddr(planRouterIDV4.Addr(), uint64(len(p.Nodes)+1))
		n.NS = name + "-" + n.Name
		p.byName[n.Name] = len(p.Nodes)
		p.Nodes = append(p.Nodes, n)
	}
	for _, s := range t.Sites {
		add(PlanNode{Name: s.Code, Kind: KindSite, ASN: s.ASN})
	}
	for _, tr := range t.Transits {
		add(PlanNode{Name: tr.Name, Kind: KindTransit, ASN: tr.ASN})
	}
	for i, l := range t.Links {
		p.Links = append(p.Links, PlanLink{
			Index: i, A: l.A, B: l.B, IfA: "to-" + l.B, IfB: "to-" + l.A,
			A4:      netip.PrefixFrom(nthAddr(planLinkV4.Addr(), uint64(4*i+1)), 30),
			B4:      netip.PrefixFrom(nthAddr(planLinkV4.Addr(), uint64(4*i+2)), 30),
			A6:      netip.PrefixFrom(subnet64(planLinkV6, i, 1), 64),
			B6:      netip.PrefixFrom(subnet64(planLinkV6, i, 2), 64),
			DelayAB: l.Delay.D(), DelayBA: l.DelayReverse.D(),
		})
	}
	for i, c := range t.Clients {
		net4 := nthAddr(planClientV4.Addr(), uint64(256*i))
		n := PlanNode{
			Name: c.Name, Kind: KindClient, Transit: c.Transit,
			V4: nthAddr(net4, 2), GW4: nthAddr(net4, 1),
			V6: subnet64(planClientV6, i, 2), GW6: subnet64(planClientV6, i, 1),
			Mgmt: nthAddr(planMgmtV4.Addr(), uint64(10+i)),
		}
		for k := 1; k < c.Nets; k++ {
			j := 2*i + k - 1
			n.Extra4 = append(n.Extra4, nthAddr(planExtraV4.Addr(), uint64(256*j+2)))
			n.Extra6 = append(n.Extra6, subnet64(planExtraV6, j, 2))
		}
		add(n)
		p.Links = append(p.Links, PlanLink{
			Index: len(p.Links), A: c.Transit, B: c.Name, IfA: "c-" + c.Name, IfB: "uplink",
			A4: netip.PrefixFrom(n.GW4, 24), B4: netip.PrefixFrom(n.V4, 24),
			A6: netip.PrefixFrom(n.GW6, 64), B6: netip.PrefixFrom(n.V6, 64),
			DelayAB: c.Delay.D(), DelayBA: c.Delay.D(), Access: true,
		})
	}
	return p, nil
}

// Node returns the planned node by name.
func (p *Plan) Node(name string) (PlanNode, bool) {
	i, ok := p.byName[name]
	if !ok {
		return PlanNode{}, false
	}
	return p.Nodes[i], true
}

// NodeByASN returns the router with this AS number.
func (p *Plan) NodeByASN(asn uint32) (PlanNode, bool) {
	for _, n := range p.Nodes {
		if n.ASN == asn && n.Kind != KindClient {
			return n, true
		}
	}
	return PlanNode{}, false
}

// Link returns the link between two nodes, if any.
func (p *Plan) Link(a, b string) (PlanLink, bool) {
	for _, l := range p.Links {
		if (l.A == a && l.B == b) || (l.A == b && l.B == a) {
			return l, true
		}
	}
	return PlanLink{}, false
}

// Namespaces lists every namespace of the instance, mgmt last.
func (p *Plan) Namespaces() []string {
	out := make([]string, 0, len(p.Nodes)+1)
	for _, n := range p.Nodes {
		out = append(out, n.NS)
	}
	return append(out, p.MgmtNS)
}

// nthAddr returns base + n for an IPv4 base.
func nthAddr(base netip.Addr, n uint64) netip.Addr {
	b := base.As4()
	v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// subnet64 returns host h of the i-th /64 inside a /48.
func subnet64(p netip.Prefix, i int, h byte) netip.Addr {
	b := p.Addr().As16()
	b[6], b[7] = byte(i>>8), byte(i)
	b[15] = h
	return netip.AddrFrom16(b)
}
