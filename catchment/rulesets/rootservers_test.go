package rulesets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/measure"
)

// rootServersDir holds root-servers.org's instance lists (2025), as saved in
// Ripe-Dns-Interception-Research/Root-Server-Analysis data/root_*.json
// @82dfdbfc942a8ba9f38176e0fde1bbd6f7379cec (README there gives the source).
// The shared fixtures sit beside the checkout (/work/main) or beside the
// worktree directory (/work/wt/NAME); the test skips when neither exists.
var rootServersDirs = []string{
	"../../../shared/fixtures/real-world/root-servers.org",
	"../../../../shared/fixtures/real-world/root-servers.org",
}

func rootServersDir() string {
	for _, d := range rootServersDirs {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return rootServersDirs[0]
}

type rootList struct {
	IPv4, IPv6 string
	Sites      []struct {
		ID, Town, Country string
		Identifiers       []string
	}
}

// TestRootServersOrgIdentifiers runs every identifier root-servers.org lists
// for a letter through the shipped rule of that letter: each must name a site,
// every identifier of one listed site the same site, and where the site code
// carries a country (A, J, K, L: "<cc>-...") it must be the listed country.
// Letters listing no identifiers (C, E) must not be shipped.
func TestRootServersOrgIdentifiers(t *testing.T) {
	services, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	withCC := map[string]bool{"a": true, "j": true, "k": true, "l": true}
	// Operator codes and root-servers.org's country column differ here:
	// J-root names its Hong Kong site "hk-hkg", listed under CN.
	ccAlias := map[string]bool{"hkCN": true}
	for _, l := range strings.Split("abcdefghijklm", "") {
		t.Run(l+"-root", func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(rootServersDir(), "root_"+l+".json"))
			if os.IsNotExist(err) {
				t.Skipf("fixture not present: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			var list rootList
			if err := json.Unmarshal(b, &list); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range list.Sites {
				n += len(s.Identifiers)
			}
			s := Find(services, l+"-root")
			if n == 0 {
				if s != nil {
					t.Errorf("%s-root lists no identifiers but a rule is shipped", l)
				}
				return
			}
			if s == nil {
				t.Fatalf("%s-root: %d identifiers listed, no service shipped", l, n)
			}
			if !contains(s.Addresses, list.IPv4) || !contains(s.Addresses, list.IPv6) {
				t.Errorf("addresses %v, want %s and %s", s.Addresses, list.IPv4, list.IPv6)
			}
			// A root-servers.org "site" is a town entry and may group several
			// of the operator's sites (M-root lists M-ORY and M-CDG under one
			// Paris entry), so the check is the other way round: one site
			// code never spans two listed countries (towns are spelt
			// differently across entries: "Wien"/"Vienna", "Sao"/"São Paulo").
			country := map[string]string{}
			for _, site := range list.Sites {
				where := site.Town + ", " + site.Country
				for _, id := range site.Identifiers {
					_, got, _ := s.Identifier().Identify(&measure.Identity{HostnameBind: id})
					_, gotNSID, _ := s.Identifier().Identify(&measure.Identity{NSID: id})
					if got == "" {
						t.Errorf("%q (%s): unmapped", id, where)
						continue
					}
					if gotNSID != got {
						t.Errorf("%q: hostname.bind gives %q, NSID %q", id, got, gotNSID)
					}
					if w, ok := country[got]; ok && w != site.Country {
						t.Errorf("%q (%s): site %q is also listed in %s", id, where, got, w)
					}
					country[got] = site.Country
					if withCC[l] && !strings.HasPrefix(got, strings.ToLower(site.Country)+"-") && !ccAlias[got[:2]+site.Country] {
						t.Errorf("%q: site %q does not start with listed country %s", id, got, site.Country)
					}
				}
			}
		})
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
