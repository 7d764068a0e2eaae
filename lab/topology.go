package lab

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultTopologyYAML []byte

// Topology is the declarative description of a lab: anycast sites, transit
// routers, clients and the links between routers. Load it with
// LoadTopology or DefaultTopology; both apply defaults and Validate.
type Topology struct {
	Anycast  Anycast   `yaml:"anycast"`
	Sites    []Site    `yaml:"sites"`
	Transits []Transit `yaml:"transits"`
	Links    []Link    `yaml:"links"`
	Clients  []Client  `yaml:"clients"`
}

// Anycast is the service every site announces and answers on. Zero fields
// take the defaults 198.18.53.53 in 198.18.53.0/24 and 2001:db8:53::53 in
// 2001:db8:53::/48.
type Anycast struct {
	V4       netip.Addr   `yaml:"v4"`
	V6       netip.Addr   `yaml:"v6"`
	PrefixV4 netip.Prefix `yaml:"prefix_v4"`
	PrefixV6 netip.Prefix `yaml:"prefix_v6"`
}

// Site is one anycast instance: a namespace running NSD on the anycast
// addresses and BIRD announcing the anycast prefixes from its own AS.
type Site struct {
	// Code names the site and its node; it is what catchment is keyed by.
	Code string  `yaml:"code" json:"code"`
	Name string  `yaml:"name" json:"name"`
	ASN  uint32  `yaml:"asn" json:"asn"`
	Lat  float64 `yaml:"lat" json:"lat"`
	Lon  float64 `yaml:"lon" json:"lon"`
	// Identity is NSD's answer to CHAOS TXT hostname.bind and id.server.
	// Empty means Code + ".lab".
	Identity string `yaml:"identity" json:"identity"`
	// NSID is the EDNS NSID payload (ASCII); empty means no NSID.
	NSID string `yaml:"nsid" json:"nsid,omitempty"`
	// HideIdentity makes NSD refuse CHAOS identity queries.
	HideIdentity bool `yaml:"hide_identity" json:"hide_identity,omitempty"`
	// Prepend is how many extra times the site prepends its AS on every
	// announcement; zero means none.
	Prepend int `yaml:"prepend" json:"prepend,omitempty"`
	// HTTPHeader is the response header ("name: value") the site's HTTP
	// responder names itself in; empty means none.
	HTTPHeader string `yaml:"http_header" json:"http_header,omitempty"`
	// TraceColo is the colo code the site prints in /cdn-cgi/trace;
	// empty means none.
	TraceColo string `yaml:"trace_colo" json:"trace_colo,omitempty"`
	// NTPRefID is the site's NTP reference id; empty means no NTP.
	NTPRefID string `yaml:"ntp_refid" json:"ntp_refid,omitempty"`
}

// Transit is a BGP router in its own AS with forwarding on.
type Transit struct {
	Name string `yaml:"name"`
	ASN  uint32 `yaml:"asn"`
}

// Link joins two routers (transit-transit or site-transit). A link with a
// delay runs over the TUN delay forwarder; a link without is a plain veth.
type Link struct {
	A string `yaml:"a"`
	B string `yaml:"b"`
	// Delay is the one-way delay from A to B, and from B to A unless
	// DelayReverse is set.
	Delay Duration `yaml:"delay"`
	// DelayReverse is the one-way delay from B to A; zero means Delay.
	DelayReverse Duration `yaml:"delay_reverse"`
}

// Client is a namespace where probes run, attached to one transit with a
// default route through it and to the management bridge.
type Client struct {
	Name    string  `yaml:"name" json:"name"`
	Region  string  `yaml:"region" json:"region"`
	Lat     float64 `yaml:"lat" json:"lat"`
	Lon     float64 `yaml:"lon" json:"lon"`
	Transit string  `yaml:"transit" json:"transit"`
	// Delay is the one-way delay of the access link, both directions.
	Delay Duration `yaml:"delay" json:"delay"`
	// Nets is how many networks (a /24 and a /64 each) sit behind the
	// access link: 1 to 3, 0 means 1. The census (docs/census.md) maps
	// each; probes use the first.
	Nets int `yaml:"nets,omitempty" json:"nets,omitempty"`
}

// Duration is a time.Duration written as "5ms" in YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts a Go duration string such as "2ms".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText writes d as a duration string (JSON).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration string (JSON).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultTopology returns the embedded default lab (docs/lab.md draws it).
func DefaultTopology() *Topology {
	t, err := ParseTopology(defaultTopologyYAML)
	if err != nil {
		panic("lab: embedded default topology: " + err.Error())
	}
	return t
}

// LoadTopology reads, defaults and validates a topology file.
func LoadTopology(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	t, err := ParseTopology(b)
	if err != nil {
		return nil, fmt.Errorf("load topology %s: %w", path, err)
	}
	return t, nil
}

// ParseTopology decodes YAML (unknown fields are errors), applies defaults
// and validates.
func ParseTopology(b []byte) (*Topology, error) {
	var t Topology
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty topology")
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	t.SetDefaults()
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// YAML encodes t (used to record the effective topology in the state dir).
func (t *Topology) YAML() ([]byte, error) { return yaml.Marshal(t) }

// SetDefaults fills zero fields.
func (t *Topology) SetDefaults() {
	a := &t.Anycast
	if !a.V4.IsValid() {
		a.V4 = netip.MustParseAddr("198.18.53.53")
	}
	if !a.V6.IsValid() {
		a.V6 = netip.MustParseAddr("2001:db8:53::53")
	}
	if !a.PrefixV4.IsValid() {
		a.PrefixV4 = netip.PrefixFrom(a.V4, 24).Masked()
	}
	if !a.PrefixV6.IsValid() {
		a.PrefixV6 = netip.PrefixFrom(a.V6, 48).Masked()
	}
	for i := range t.Sites {
		if t.Sites[i].Identity == "" {
			t.Sites[i].Identity = t.Sites[i].Code + ".lab"
		}
	}
	for i := range t.Links {
		if t.Links[i].DelayReverse == 0 {
			t.Links[i].DelayReverse = t.Links[i].Delay
		}
	}
}

// Limits of the address plan and of Linux interface names.
const (
	maxNodeName = 10
	maxClients  = 120
	// maxClientNets: the extra client networks come from 198.19.0-239,
	// two /24s per client (see plan.go).
	maxClientNets = 3
	maxNodes      = 250
	maxLinks      = 4000
	maxDelay      = 2 * time.Second
)

var (
	nodeNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)
	identityRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)
	labV4      = netip.MustParsePrefix("198.18.0.0/15")
	labV6      = netip.MustParsePrefix("2001:db8::/32")
)

// Validate checks names, ASNs, addresses and links, returning the first
// problem found.
func (t *Topology) Validate() error {
	a := t.Anycast
	switch {
	case !a.V4.Is4():
		return fmt.Errorf("anycast.v4 %s: not an IPv4 address", a.V4)
	case !a.V6.Is6() || a.V6.Is4In6():
		return fmt.Errorf("anycast.v6 %s: not an IPv6 address", a.V6)
	case !a.PrefixV4.Contains(a.V4):
		return fmt.Errorf("anycast.v4 %s: outside anycast.prefix_v4 %s", a.V4, a.PrefixV4)
	case !a.PrefixV6.Contains(a.V6):
		return fmt.Errorf("anycast.v6 %s: outside anycast.prefix_v6 %s", a.V6, a.PrefixV6)
	case !labV4.Contains(a.V4) || a.PrefixV4.Bits() < labV4.Bits():
		return fmt.Errorf("anycast.prefix_v4 %s: must be inside the lab range %s", a.PrefixV4, labV4)
	case !labV6.Contains(a.V6) || a.PrefixV6.Bits() < labV6.Bits():
		return fmt.Errorf("anycast.prefix_v6 %s: must be inside the lab range %s", a.PrefixV6, labV6)
	case a.PrefixV4.Overlaps(planClientV4) || a.PrefixV4.Overlaps(planMgmtV4) || a.PrefixV4.Overlaps(planRouterIDV4):
		return fmt.Errorf("anycast.prefix_v4 %s: overlaps the lab's own address plan", a.PrefixV4)
	case a.PrefixV6.Overlaps(planClientV6) || a.PrefixV6.Overlaps(planLinkV6):
		return fmt.Errorf("anycast.prefix_v6 %s: overlaps the lab's own address plan", a.PrefixV6)
	}
	if len(t.Sites) == 0 {
		return errors.New("no sites")
	}
	for _, s := range t.Sites {
		if err := s.validateResponder(); err != nil {
			return fmt.Errorf("site %q: %w", s.Code, err)
		}
	}
	if len(t.Transits) == 0 {
		return errors.New("no transits")
	}
	if len(t.Clients) == 0 {
		return errors.New("no clients")
	}
	if len(t.Clients) > maxClients {
		return fmt.Errorf("%d clients: at most %d", len(t.Clients), maxClients)
	}
	if len(t.Links) > maxLinks {
		return fmt.Errorf("%d links: at most %d", len(t.Links), maxLinks)
	}
	kinds := map[string]string{} // node name -> "site" | "transit" | "client"
	asns := map[uint32]string{}
	checkName := func(kind, name string) error {
		if !nodeNameRE.MatchString(name) || len(name) > maxNodeName {
			return fmt.Errorf("%s %q: name must be 1-%d of [a-z0-9], starting with a letter", kind, name, maxNodeName)
		}
		if name == "mgmt" {
			return fmt.Errorf("%s %q: name is reserved", kind, name)
		}
		if prev, ok := kinds[name]; ok {
			return fmt.Errorf("%s %q: name already used by a %s", kind, name, prev)
		}
		kinds[name] = kind
		return nil
	}
	checkASN := func(kind, name string, asn uint32) error {
		if asn == 0 || asn == 23456 || asn >= 4200000000+94967295 {
			return fmt.Errorf("%s %q: invalid asn %d", kind, name, asn)
		}
		if prev, ok := asns[asn]; ok {
			return fmt.Errorf("%s %q: asn %d already used by %q", kind, name, asn, prev)
		}
		asns[asn] = name
		return nil
	}
	for _, s := range t.Sites {
		if err := checkName("site", s.Code); err != nil {
			return err
		}
		if err := checkASN("site", s.Code, s.ASN); err != nil {
			return err
		}
		if !identityRE.MatchString(s.Identity) {
			return fmt.Errorf("site %q: identity %q must be 1-63 of [A-Za-z0-9._-]", s.Code, s.Identity)
		}
		if s.NSID != "" && !identityRE.MatchString(s.NSID) {
			return fmt.Errorf("site %q: nsid %q must be 1-63 of [A-Za-z0-9._-]", s.Code, s.NSID)
		}
		if s.Prepend < 0 || s.Prepend > 10 {
			return fmt.Errorf("site %q: prepend %d must be 0-10", s.Code, s.Prepend)
		}
		if s.Lat < -90 || s.Lat > 90 || s.Lon < -180 || s.Lon > 180 {
			return fmt.Errorf("site %q: lat/lon %g,%g out of range", s.Code, s.Lat, s.Lon)
		}
	}
	for _, tr := range t.Transits {
		if err := checkName("transit", tr.Name); err != nil {
			return err
		}
		if err := checkASN("transit", tr.Name, tr.ASN); err != nil {
			return err
		}
	}
	for _, c := range t.Clients {
		if err := checkName("client", c.Name); err != nil {
			return err
		}
		if c.Region == "" {
			return fmt.Errorf("client %q: no region", c.Name)
		}
		if kinds[c.Transit] != "transit" {
			return fmt.Errorf("client %q: transit %q is not a transit", c.Name, c.Transit)
		}
		if c.Delay < 0 || c.Delay.D() > maxDelay {
			return fmt.Errorf("client %q: delay %s must be 0-%s", c.Name, c.Delay, maxDelay)
		}
		if c.Lat < -90 || c.Lat > 90 || c.Lon < -180 || c.Lon > 180 {
			return fmt.Errorf("client %q: lat/lon %g,%g out of range", c.Name, c.Lat, c.Lon)
		}
		if c.Nets < 0 || c.Nets > maxClientNets {
			return fmt.Errorf("client %q: nets %d must be 1-%d", c.Name, c.Nets, maxClientNets)
		}
	}
	pairs := map[[2]string]bool{}
	linked := map[string]bool{}
	for i, l := range t.Links {
		ka, kb := kinds[l.A], kinds[l.B]
		switch {
		case ka == "" || kb == "":
			unknown := l.A
			if ka != "" {
				unknown = l.B
			}
			return fmt.Errorf("link %d (%s-%s): unknown node %q", i, l.A, l.B, unknown)
		case l.A == l.B:
			return fmt.Errorf("link %d (%s-%s): a link needs two different nodes", i, l.A, l.B)
		case ka == "client" || kb == "client":
			return fmt.Errorf("link %d (%s-%s): clients attach with their transit field, not links", i, l.A, l.B)
		case ka == "site" && kb == "site":
			return fmt.Errorf("link %d (%s-%s): sites connect only to transits", i, l.A, l.B)
		case l.Delay < 0 || l.Delay.D() > maxDelay || l.DelayReverse < 0 || l.DelayReverse.D() > maxDelay:
			return fmt.Errorf("link %d (%s-%s): delay must be 0-%s", i, l.A, l.B, maxDelay)
		}
		key := [2]string{min(l.A, l.B), max(l.A, l.B)}
		if pairs[key] {
			return fmt.Errorf("link %d (%s-%s): duplicate link", i, l.A, l.B)
		}
		pairs[key] = true
		linked[l.A], linked[l.B] = true, true
	}
	for _, s := range t.Sites {
		if !linked[s.Code] {
			return fmt.Errorf("site %q: no link to a transit", s.Code)
		}
	}
	for _, tr := range t.Transits {
		if !linked[tr.Name] {
			return fmt.Errorf("transit %q: no links", tr.Name)
		}
	}
	if n := len(t.Sites) + len(t.Transits) + len(t.Clients); n > maxNodes {
		return fmt.Errorf("%d nodes: at most %d", n, maxNodes)
	}
	return nil
}

// Site returns the site with this code.
func (t *Topology) Site(code string) (Site, bool) {
	for _, s := range t.Sites {
		if s.Code == code {
			return s, true
		}
	}
	return Site{}, false
}
