package importer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/catchment/rulesets"
	"github.com/anycatch/anycatch/store"
)

// TargetStore is what preparing a target needs from the database.
type TargetStore interface {
	GetTarget(ctx context.Context, name string) (*store.Target, error)
	CreateTarget(ctx context.Context, t *store.Target) error
	ListRules(ctx context.Context, targetID int) ([]catchment.Rule, error)
	ReplaceRules(ctx context.Context, targetID int, rules []catchment.Rule) error
}

var _ TargetStore = (*store.DB)(nil)

// BuiltinRules as TargetOptions.RulesFile selects the rules file embedded
// in anycatch (catchment/rulesets/default.yaml).
const BuiltinRules = "builtin"

// TargetOptions says which target receives an import and how its dns
// identities are mapped to sites.
type TargetOptions struct {
	Name string
	// Create creates the target when it does not exist: disabled (our
	// own probes are not scheduled on it until someone enables it), with
	// Addrs as its addresses, or the chosen service's addresses when
	// Addrs is empty.
	Create bool
	Addrs  []string
	// RulesFile is a rules file (rulesets format) or BuiltinRules; ""
	// uses the target's rules from the database. Service picks the
	// service in it; "" means the service named like the target, or the
	// only service of the file.
	RulesFile string
	Service   string
}

// Prepared is the target of an import and the identifier to use.
type Prepared struct {
	Target     *store.Target
	Identifier *catchment.Identifier
	// Notes say what was decided (created the target, stored rules,
	// rules in use), for the operator.
	Notes []string
}

// PrepareTarget finds (or creates) the target and decides the rules:
//
//   - without RulesFile, the target's rules from the database, in the
//     target's identity order (none: every identity stays unmapped, and a
//     note says so);
//   - with RulesFile, the chosen service's rules and identity order. When
//     the target has no rules yet they are also stored for it, so the
//     catchment API and later imports map the same way; when it has rules
//     they are left alone and the file's rules are used for this import
//     only (a note says so).
func PrepareTarget(ctx context.Context, ts TargetStore, o TargetOptions) (Prepared, error) {
	var p Prepared
	var svc *rulesets.Service
	if o.RulesFile != "" || o.Service != "" {
		path := o.RulesFile
		if path == BuiltinRules {
			path = ""
		}
		services, err := rulesets.Load(path)
		if err != nil {
			return p, fmt.Errorf("site rules: %w", err)
		}
		if svc, err = pickService(services, o.Service, o.Name); err != nil {
			return p, fmt.Errorf("site rules: %w", err)
		}
	}

	t, err := ts.GetTarget(ctx, o.Name)
	switch {
	case errors.Is(err, store.ErrNotFound) && o.Create:
		t, err = createTarget(ctx, ts, o, svc)
		if err != nil {
			return p, err
		}
		p.Notes = append(p.Notes, fmt.Sprintf("created target %q (id %d, disabled, addresses %s)", t.Name, t.ID, joinAddrs(t)))
	case errors.Is(err, store.ErrNotFound):
		return p, fmt.Errorf("target %q does not exist (create it, or pass --create-target): %w", o.Name, err)
	case err != nil:
		return p, err
	}
	p.Target = t

	rules, err := ts.ListRules(ctx, t.ID)
	if err != nil {
		return p, err
	}
	if svc == nil {
		p.Identifier, err = catchment.NewIdentifier(t.IdentityOrder, rules)
		if err != nil {
			return p, fmt.Errorf("rules of target %q: %w", t.Name, err)
		}
		if len(rules) == 0 {
			p.Notes = append(p.Notes, fmt.Sprintf("target %q has no site rules: dns identities are stored unmapped (pass --site-rules)", t.Name))
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("site rules: the %s of target %q", plural(len(rules), "rule", "rules"), t.Name))
		}
		return p, nil
	}
	p.Identifier = svc.Identifier()
	if len(rules) == 0 {
		if err := ts.ReplaceRules(ctx, t.ID, svc.Rules); err != nil {
			return p, fmt.Errorf("store rules for target %q: %w", t.Name, err)
		}
		p.Notes = append(p.Notes, fmt.Sprintf("site rules: service %q (%s), now also stored for target %q", svc.Name, plural(len(svc.Rules), "rule", "rules"), t.Name))
	} else {
		p.Notes = append(p.Notes, fmt.Sprintf("site rules: service %q for this import; target %q keeps its own %s", svc.Name, t.Name, plural(len(rules), "rule", "rules")))
	}
	return p, nil
}

func pickService(services []rulesets.Service, name, target string) (*rulesets.Service, error) {
	if name != "" {
		if s := rulesets.Find(services, name); s != nil {
			return s, nil
		}
		return nil, fmt.Errorf("no service %q (have %s)", name, serviceNames(services))
	}
	if s := rulesets.Find(services, target); s != nil {
		return s, nil
	}
	if len(services) == 1 {
		return &services[0], nil
	}
	return nil, fmt.Errorf("the file has several services (%s): pick one with --service", serviceNames(services))
}

func serviceNames(services []rulesets.Service) string {
	names := make([]string, len(services))
	for i := range services {
		names[i] = services[i].Name
	}
	return strings.Join(names, ", ")
}

func createTarget(ctx context.Context, ts TargetStore, o TargetOptions, svc *rulesets.Service) (*store.Target, error) {
	addrs := o.Addrs
	if len(addrs) == 0 && svc != nil {
		addrs = svc.Addresses
	}
	t := &store.Target{Name: o.Name, Description: "imported from RIPE Atlas", Enabled: false}
	for _, s := range addrs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("create target %q: address %q: %w", o.Name, s, err)
		}
		a = a.Unmap()
		switch {
		case a.Is4() && t.Addr4 == "":
			t.Addr4 = a.String()
		case a.Is6() && t.Addr6 == "":
			t.Addr6 = a.String()
		}
	}
	if t.Addr4 == "" && t.Addr6 == "" {
		return nil, fmt.Errorf("create target %q: no address: pass --addr (or a --service whose rules list addresses)", o.Name)
	}
	if svc != nil {
		t.IdentityOrder = svc.IdentityOrder // nil: the default order
	}
	if err := ts.CreateTarget(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

func joinAddrs(t *store.Target) string {
	var a []string
	for _, s := range []string{t.Addr4, t.Addr6} {
		if s != "" {
			a = append(a, s)
		}
	}
	return strings.Join(a, ", ")
}

// plural is "1 rule" or "3 rules".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
