package main

import (
	"fmt"
	"net/netip"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/catchment/rulesets"
	"github.com/anycatch/anycatch/measure"
)

// siteLine says which site an identity answer points to, using the
// identity rules shipped with anycatch (catchment/rulesets) or a rules file
// given with --rules: the service is the one listing the measured address,
// or the only service of a one-service file. It returns "" when no service
// applies, so the output shows no guess.
//
// For an identity answer the line names the identity string; for http and
// ntp answers it also names the source ("from http_header:cf-ray …").
func siteLine(services []rulesets.Service, r *measure.Result) string {
	svc := serviceFor(services, r.Dst)
	if svc == nil {
		return ""
	}
	if r.DNS != nil {
		if r.DNS.Identity.Empty() {
			return ""
		}
		state, site, identity := svc.Identifier().Identify(r.DNS.Identity)
		if state == catchment.StateSite {
			return fmt.Sprintf("%s   (%s, from %q)", site, svc.Name, identity)
		}
		return fmt.Sprintf("unmapped: no %s rule matches %q", svc.Name, identity)
	}
	// Several services may share an address (Cloudflare's resolver and
	// its HTTP edge): the first whose rules name a site wins.
	var unmapped string
	for _, s := range servicesFor(services, r.Dst) {
		m := s.Identifier().IdentifyResult(r)
		switch {
		case m.State == catchment.StateSite:
			return fmt.Sprintf("%s   (%s, from %s %q)", m.Site, s.Name, m.Source, m.Identity)
		case m.Identity != "" && unmapped == "":
			unmapped = fmt.Sprintf("unmapped: no %s rule matches %q", s.Name, m.Identity)
		}
	}
	if unmapped == "" {
		unmapped = fmt.Sprintf("unmapped: no %s rule applies to this answer", svc.Name)
	}
	return unmapped
}

// servicesFor is every service listing dst, or the only service of a
// one-service file.
func servicesFor(services []rulesets.Service, dst string) []*rulesets.Service {
	a, err := netip.ParseAddr(dst)
	if err != nil {
		return nil
	}
	var out []*rulesets.Service
	for i := range services {
		for _, s := range services[i].Addresses {
			if b, err := netip.ParseAddr(s); err == nil && b == a.Unmap() {
				out = append(out, &services[i])
				break
			}
		}
	}
	if len(out) == 0 && len(services) == 1 {
		out = append(out, &services[0])
	}
	return out
}

func serviceFor(services []rulesets.Service, dst string) *rulesets.Service {
	a, err := netip.ParseAddr(dst)
	if err != nil {
		return nil
	}
	for i := range services {
		for _, s := range services[i].Addresses {
			if b, err := netip.ParseAddr(s); err == nil && b == a.Unmap() {
				return &services[i]
			}
		}
	}
	if len(services) == 1 {
		return &services[0]
	}
	return nil
}
