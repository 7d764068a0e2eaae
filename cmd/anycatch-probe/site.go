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
func siteLine(services []rulesets.Service, r *measure.Result) string {
	if r.DNS == nil || r.DNS.Identity.Empty() {
		return ""
	}
	svc := serviceFor(services, r.Dst)
	if svc == nil {
		return ""
	}
	state, site, identity := svc.Identifier().Identify(r.DNS.Identity)
	if state == catchment.StateSite {
		return fmt.Sprintf("%s   (%s, from %q)", site, svc.Name, identity)
	}
	return fmt.Sprintf("unmapped: no %s rule matches %q", svc.Name, identity)
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
