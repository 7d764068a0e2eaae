package lab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultTopology(t *testing.T) {
	topo := DefaultTopology()
	if got := len(topo.Sites); got != 5 {
		t.Errorf("sites: got %d, want 5", got)
	}
	if got := len(topo.Clients); got != 8 {
		t.Errorf("clients: got %d, want 8", got)
	}
	regions := map[string]int{}
	for _, c := range topo.Clients {
		regions[c.Region]++
	}
	if len(regions) != 4 {
		t.Errorf("regions: got %v, want 4 regions", regions)
	}
	// Identity variety the probes must cope with.
	var nsidOnly, silent int
	for _, s := range topo.Sites {
		switch {
		case s.HideIdentity && s.NSID != "":
			nsidOnly++
		case s.HideIdentity:
			silent++
		}
	}
	if nsidOnly != 1 || silent != 1 {
		t.Errorf("got %d NSID-only and %d silent sites, want 1 and 1", nsidOnly, silent)
	}
	if s, _ := topo.Site("sin"); s.Identity != "ns1.sg-sin.lab" {
		t.Errorf("sin identity: got %q", s.Identity)
	}
}

func TestLoadTopologyErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"unknown_field.yaml", "parse: yaml: unmarshal errors:\n  line 4: field colour not found in type lab.Site"},
		{"dup_asn.yaml", `transit "euw": asn 65001 already used by "ams"`},
		{"dup_name.yaml", `transit "ams": name already used by a site`},
		{"bad_link_node.yaml", `link 1 (euw-nowhere): unknown node "nowhere"`},
		{"site_to_site.yaml", `link 1 (ams-fra): sites connect only to transits`},
		{"bad_delay.yaml", `parse: line 6: bad duration "5 parsecs"`},
		{"long_name.yaml", `site "amsterdam01x": name must be 1-10 of [a-z0-9], starting with a letter`},
		{"anycast_outside_lab.yaml", `anycast.prefix_v4 192.0.2.0/24: must be inside the lab range 198.18.0.0/15`},
		{"client_bad_transit.yaml", `client "lon1": transit "ams" is not a transit`},
		{"client_bad_nets.yaml", `client "lon1": nets 4 must be 1-3`},
		{"site_unlinked.yaml", `site "fra": no link to a transit`},
		{"dup_link.yaml", `link 1 (euw-ams): duplicate link`},
		{"no_clients.yaml", `no clients`},
		{"bad_identity.yaml", `site "ams": identity "ams 1; drop" must be 1-63 of [A-Za-z0-9._-]`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := LoadTopology(path)
			if err == nil {
				t.Fatal("got no error")
			}
			want := "load topology " + path + ": " + tt.want
			if err.Error() != want {
				t.Errorf("got  %q\nwant %q", err.Error(), want)
			}
		})
	}
}

func TestLoadTopologyMinimal(t *testing.T) {
	topo, err := LoadTopology("testdata/good_minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Anycast.PrefixV6.String(); got != "2001:db8:53::/48" {
		t.Errorf("default anycast v6 prefix: got %s", got)
	}
	if s, _ := topo.Site("fra"); s.Identity != "fra.lab" {
		t.Errorf("default identity: got %q, want fra.lab", s.Identity)
	}
	if got := topo.Links[1].DelayReverse; got != 0 {
		t.Errorf("plain link reverse delay: got %v, want 0", got)
	}
	if got := topo.Links[0].DelayReverse.D(); got != 7*time.Millisecond {
		t.Errorf("reverse delay: got %v, want 7ms", got)
	}
	// The effective topology round-trips through the state dir.
	y, err := topo.YAML()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseTopology(y)
	if err != nil {
		t.Fatalf("reparse: %v\n%s", err, y)
	}
	if again.Links[0].Delay != topo.Links[0].Delay || again.Anycast != topo.Anycast {
		t.Errorf("round trip changed the topology:\n%s", y)
	}
}

func TestParseTopologyEmpty(t *testing.T) {
	if _, err := ParseTopology(nil); err == nil || err.Error() != "empty topology" {
		t.Errorf("got %v, want empty topology", err)
	}
}

func TestPlan(t *testing.T) {
	topo := DefaultTopology()
	p, err := topo.Plan("acl")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name, got, want string
	}{
		{"ams ns", node(t, p, "ams").NS, "acl-ams"},
		{"ams router id", node(t, p, "ams").RouterID.String(), "198.18.0.1"},
		{"euw router id", node(t, p, "euw").RouterID.String(), "198.18.0.6"},
		{"lon1 v4", node(t, p, "lon1").V4.String(), "198.18.128.2"},
		{"lon1 gw4", node(t, p, "lon1").GW4.String(), "198.18.128.1"},
		{"sao1 v4", node(t, p, "sao1").V4.String(), "198.18.135.2"},
		{"sao1 v6", node(t, p, "sao1").V6.String(), "2001:db8:c1:7::2"},
		{"sao1 gw6", node(t, p, "sao1").GW6.String(), "2001:db8:c1:7::1"},
		{"lon1 mgmt", node(t, p, "lon1").Mgmt.String(), "198.19.255.10"},
		{"mgmt addr", p.MgmtAddr.String(), "198.19.255.1"},
		{"mgmt ns", p.MgmtNS, "acl-mgmt"},
		{"link0 a4", p.Links[0].A4.String(), "100.64.0.1/30"},
		{"link0 b4", p.Links[0].B4.String(), "100.64.0.2/30"},
		{"link1 a4", p.Links[1].A4.String(), "100.64.0.5/30"},
		{"link1 b6", p.Links[1].B6.String(), "2001:db8:ff:1::2/64"},
		{"link1 ifs", p.Links[1].IfA + " " + p.Links[1].IfB, "to-eue to-fra"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, c.got, c.want)
		}
	}
	if p.Links[0].TUN() {
		t.Error("ams-euw has no delay: want a veth, got TUN")
	}
	if !p.Links[1].TUN() || p.Links[1].Delay("fra") != time.Millisecond {
		t.Errorf("fra-eue: want TUN with 1ms, got %+v", p.Links[1])
	}
	// Every address unique, inside the lab ranges, every ifname <= 15.
	seen := map[netip.Addr]string{}
	lab4, cgnat := netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("100.64.0.0/10")
	for _, k := range p.Links {
		for _, a := range []netip.Prefix{k.A4, k.B4, k.A6, k.B6} {
			if prev, ok := seen[a.Addr()]; ok {
				t.Errorf("address %s used by %s and %s-%s", a, prev, k.A, k.B)
			}
			seen[a.Addr()] = k.A + "-" + k.B
			if !lab4.Contains(a.Addr()) && !cgnat.Contains(a.Addr()) && !labV6.Contains(a.Addr()) {
				t.Errorf("address %s outside the lab ranges", a)
			}
		}
		for _, ifn := range []string{k.IfA, k.IfB} {
			if len(ifn) > 15 {
				t.Errorf("interface name %q longer than 15", ifn)
			}
		}
	}
	if _, err := topo.Plan("Bad-Name"); err == nil {
		t.Error("Plan accepted instance name Bad-Name")
	}
}

func node(t *testing.T, p *Plan, name string) PlanNode {
	t.Helper()
	n, ok := p.Node(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	return n
}

func TestBirdConfig(t *testing.T) {
	topo, err := LoadTopology("testdata/good_minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := topo.Plan("x")
	fra, err := birdConfig(topo, p, "fra")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"router id 198.18.0.2;",
		"protocol static anycast4 { ipv4; route 198.18.53.0/24 blackhole; }",
		"export filter { if source != RTS_STATIC then reject; bgp_path.prepend(65002); bgp_path.prepend(65002); accept; }",
		"protocol bgp n_euw_v6 from peer {\n\tneighbor 2001:db8:ff:1::2 as 65101;",
		"connect retry time 1;",
	} {
		if !strings.Contains(fra, want) {
			t.Errorf("fra bird.conf lacks %q:\n%s", want, fra)
		}
	}
	euw, _ := birdConfig(topo, p, "euw")
	for _, want := range []string{`interface "c-*";`, "neighbor 100.64.0.1 as 65001;", "ipv4 { import all; export all; };"} {
		if !strings.Contains(euw, want) {
			t.Errorf("euw bird.conf lacks %q:\n%s", want, euw)
		}
	}
	if _, err := birdConfig(topo, p, "lon1"); err == nil {
		t.Error("bird config for a client: want error")
	}
}

func TestNSDConfig(t *testing.T) {
	topo := DefaultTopology()
	iad, _ := topo.Site("iad")
	gru, _ := topo.Site("gru")
	ams, _ := topo.Site("ams")
	for _, c := range []struct {
		site    Site
		want    []string
		notWant []string
	}{
		{ams, []string{`identity: "ams1.lab.anycatch.test"`, "hide-identity: no", `nsid: "ascii_ams1"`, "ip-address: 2001:db8:53::53", `username: ""`}, nil},
		{iad, []string{"hide-identity: yes", `nsid: "ascii_iad-b2"`}, nil},
		{gru, []string{"hide-identity: yes"}, []string{"nsid:"}},
	} {
		conf := nsdConfig(topo, c.site, "/run/x/"+c.site.Code)
		for _, w := range c.want {
			if !strings.Contains(conf, w) {
				t.Errorf("%s nsd.conf lacks %q:\n%s", c.site.Code, w, conf)
			}
		}
		for _, w := range c.notWant {
			if strings.Contains(conf, w) {
				t.Errorf("%s nsd.conf has %q:\n%s", c.site.Code, w, conf)
			}
		}
	}
}

// TestPlanClientNets: extra client networks come from their own ranges,
// two per client, never overlapping the access nets or management.
func TestPlanClientNets(t *testing.T) {
	p, err := DefaultTopology().Plan("x")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		client string
		want   string
	}{
		{"lon1", "[198.19.0.2 198.19.1.2] [2001:db8:c2::2 2001:db8:c2:1::2]"},
		{"par1", "[198.19.2.2 198.19.3.2] [2001:db8:c2:2::2 2001:db8:c2:3::2]"},
		{"sao1", "[198.19.14.2 198.19.15.2] [2001:db8:c2:e::2 2001:db8:c2:f::2]"},
	} {
		n, _ := p.Node(tc.client)
		if got := fmt.Sprint(n.Extra4, " ", n.Extra6); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.client, got, tc.want)
		}
	}
	// The last possible client's nets stay below the management /24.
	topo := DefaultTopology()
	for len(topo.Clients) < maxClients {
		c := topo.Clients[0]
		c.Name = fmt.Sprintf("c%d", len(topo.Clients))
		topo.Clients = append(topo.Clients, c)
	}
	p, err = topo.Plan("x")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := p.Node(topo.Clients[maxClients-1].Name)
	if last := n.Extra4[len(n.Extra4)-1]; MgmtPrefix.Contains(last) || !planExtraV4.Contains(last) {
		t.Errorf("client %d's last net %s is outside %s or in the management network", maxClients, last, planExtraV4)
	}
}
