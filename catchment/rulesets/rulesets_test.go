package rulesets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

func TestDefault(t *testing.T) {
	services, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	// Real answers, from the RIPE Atlas fixtures (../shared/fixtures/ripe-atlas)
	// and the services' public formats.
	tests := []struct {
		service  string
		id       measure.Identity
		wantSite string
	}{
		{"k-root", measure.Identity{HostnameBind: "ns1.fi-hel.k.ripe.net"}, "fi-hel"},
		{"k-root", measure.Identity{NSID: "k3.ams-ix.k.ripe.net"}, "ams-ix"},
		{"quad9", measure.Identity{IDServer: "res200.vie.rrdns.pch.net"}, "vie"},
		{"quad9", measure.Identity{IDServer: "res110.mia.rrdns.pch.net"}, "mia"},
		{"cloudflare-dns", measure.Identity{IDServer: "AMS"}, "ams"},
		{"l-root", measure.Identity{HostnameBind: "aa.nl-ams.l.root"}, "nl-ams"},
		{"l-root", measure.Identity{HostnameBind: "es-mad-aa"}, "es-mad"},
		{"l-root", measure.Identity{NSID: "kr-icn-aa"}, "kr-icn"},
		{"quad9", measure.Identity{NSID: "res320.qlax1.rrdns.pch.net"}, "lax"},
		{"quad9", measure.Identity{NSID: "res100.akl2.rrdns.pch.net"}, "akl"},
		{"quad9", measure.Identity{NSID: "res730.xsjc1.rrdns.pch.net"}, "sjc"},
		{"quad9", measure.Identity{IDServer: "dns2.ams"}, ""},
		// Root letters, from root-servers.org's instance lists (2025,
		// ../shared/fixtures/real-world/root-servers.org); every listed
		// identifier is checked by TestRootServersOrgIdentifiers.
		{"a-root", measure.Identity{HostnameBind: "a6.nl-ams.root"}, "nl-ams"},
		{"a-root", measure.Identity{NSID: "a21-a.us-qas.root"}, "us-qas"},
		{"b-root", measure.Identity{HostnameBind: "b4-sin"}, "sin"},
		{"d-root", measure.Identity{NSID: "atgr2.droot.maxgigapop.net"}, "atgr"},
		{"f-root", measure.Identity{HostnameBind: "ams1f.f.root-servers.org"}, "ams"},
		{"f-root", measure.Identity{HostnameBind: "BOS.cf.f.root-servers.org"}, "bos"},
		{"g-root", measure.Identity{HostnameBind: "groot-eur1-2"}, "eur1"},
		{"h-root", measure.Identity{NSID: "001.mia.h.root-servers.org"}, "mia"},
		{"i-root", measure.Identity{HostnameBind: "s1.sth"}, "sth"},
		{"i-root", measure.Identity{HostnameBind: "ukx"}, "ukx"},
		{"j-root", measure.Identity{HostnameBind: "n1.ao-lad.root"}, "ao-lad"},
		{"j-root", measure.Identity{HostnameBind: "a1.sa--ruh.root"}, "sa--ruh"},
		{"m-root", measure.Identity{HostnameBind: "M-NRT-DIXIE-1"}, "nrt-dixie"},
		{"m-root", measure.Identity{NSID: "M-KTM"}, "ktm"},
		{"m-root", measure.Identity{NSID: "M-BKK-1"}, "bkk"},
		{"google-dns", measure.Identity{NSID: "gpdns-muc"}, "muc"},
		{"google-dns", measure.Identity{NSID: "gpdns-muc.evil"}, ""},
		{"h-root", measure.Identity{HostnameBind: "001.mia.h.root-servers.org.evil"}, ""},
		{"b-root", measure.Identity{HostnameBind: "b1-amsx"}, ""},
		{"k-root", measure.Identity{HostnameBind: "ns1.fi-hel.k.ripe.net.evil"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.service+"/"+tt.wantSite, func(t *testing.T) {
			s := Find(services, tt.service)
			if s == nil {
				t.Fatalf("service %q not shipped", tt.service)
			}
			_, site, _ := s.Identifier().Identify(&tt.id)
			if site != tt.wantSite {
				t.Errorf("got site %q, want %q", site, tt.wantSite)
			}
		})
	}
	for _, s := range services {
		for i, r := range s.Rules {
			if len(r.Note) < 20 {
				t.Errorf("%s rule %d: got note %q, want a real source and date", s.Name, i, r.Note)
			}
		}
	}
}

func TestLoad(t *testing.T) {
	s, err := Load("testdata/good.json")
	if err != nil {
		t.Fatal(err)
	}
	if st, site, _ := s[0].Identifier().Identify(&measure.Identity{NSID: "fra-dns"}); st != catchment.StateSite || site != "fra" {
		t.Errorf("got (%s, %q), want (site, fra)", st, site)
	}
	def, err := Load("")
	if err != nil || len(def) == 0 {
		t.Errorf("Load(\"\"): got %d services, error %v; want the default set", len(def), err)
	}
}

func TestBadFiles(t *testing.T) {
	want := map[string]string{
		"unknown-field.yaml":  "field adresses not found",
		"no-note.yaml":        "service 0 (x): rule 0: note is required",
		"bad-regex.yaml":      "service 0 (x): rule 1: pattern: error parsing regexp",
		"bad-address.yaml":    `service 0 (x): address "k.root-servers.net" is not an IP address`,
		"duplicate.json":      "service 1 (x): duplicate name",
		"unknown-source.json": `service 0 (x): rule 0: unknown source "version_bind"`,
	}
	files, _ := filepath.Glob("testdata/bad/*")
	if len(files) != len(want) {
		t.Errorf("got %d bad files, want %d", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			w, ok := want[filepath.Base(f)]
			if !ok {
				t.Fatalf("no expected error for %s", f)
			}
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("got error %v, want one containing %q", err, w)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(defaultYAML)                                      // the shipped file
	f.Add([]byte(`{"services":[{"name":"x","rules":[]}]}`)) // JSON, no rules
	for _, p := range []string{"testdata/good.json", "testdata/bad/bad-regex.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		services, err := Parse(data)
		if err != nil {
			return
		}
		for _, s := range services {
			if s.Identifier() == nil {
				t.Fatalf("service %q parsed without an identifier", s.Name)
			}
			s.Identifier().Identify(&measure.Identity{HostnameBind: "a.b", IDServer: "AMS", NSID: "x"})
		}
	})
}
