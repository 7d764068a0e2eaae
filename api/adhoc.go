package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// resolveTimeout bounds the lookup of a hostname to measure.
const resolveTimeout = 5 * time.Second

// adhocAddrs turns the address of an admin's on-demand request into what
// the probes measure: at most one address per family (in.AF: 4, 6 or 0
// for both).
//
// An IP literal is passed on as given, whatever range it is in: each
// probe's own policy decides (a probe refuses special-purpose ranges
// unless its operator allowed them, as in a lab), and says so per probe.
// A hostname is resolved here, once, and only its globally reachable
// addresses are kept: every probe then measures the same address, which
// the collector can hold each result to, and a name that points into
// private space is refused before any probe is asked.
func (s *Server) adhocAddrs(ctx context.Context, in MeasurementInput) ([]netip.Addr, error) {
	if in.Target != "" {
		return nil, invalid("address", "give target or address, not both")
	}
	if in.From.Site != "" {
		return nil, invalid("from.site", "selecting by catchment site needs a registered target")
	}
	if in.AF != 0 && in.AF != 4 && in.AF != 6 {
		return nil, invalid("af", "want 4, 6 or 0 (both)")
	}
	want := func(a netip.Addr) bool {
		return in.AF == 0 || in.AF == 4 && a.Is4() || in.AF == 6 && a.Is6()
	}
	if a, err := netip.ParseAddr(in.Address); err == nil {
		a = a.Unmap()
		if a.Zone() != "" {
			return nil, invalid("address", "an address with a zone cannot be measured from remote probes")
		}
		if !want(a) {
			return nil, invalid("af", "address %s is not IPv%d", a, in.AF)
		}
		return []netip.Addr{a}, nil
	}
	host := strings.TrimSuffix(in.Address, ".")
	if !validHostname(host) {
		return nil, invalid("address", "want an IP address or a hostname")
	}
	resolve := s.cfg.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	found, err := resolve(ctx, host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, invalid("address", "hostname %s does not resolve", host)
		}
		return nil, &Error{Code: CodeUnavailable, Message: fmt.Sprintf("resolve %s: lookup failed; retry later", host)}
	}
	var out []netip.Addr
	var have4, have6 bool
	for _, a := range found {
		a = a.Unmap().WithZone("")
		if _, _, special := measure.SpecialRange(a); special || !want(a) {
			continue
		}
		if a.Is4() && !have4 || a.Is6() && !have6 {
			out = append(out, a)
			have4, have6 = have4 || a.Is4(), have6 || a.Is6()
		}
	}
	if len(out) == 0 {
		fam := ""
		if in.AF != 0 {
			fam = fmt.Sprintf(" IPv%d", in.AF)
		}
		return nil, invalid("address", "hostname %s has no globally reachable%s address (special-purpose ranges are not measured by name)", host, fam)
	}
	return out, nil
}

// validHostname accepts LDH names of at most 253 bytes.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
