package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/catchment/rulesets"
	"github.com/anycatch/anycatch/measure"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/internal/cliflag"
	"github.com/anycatch/anycatch/store"
)

// The admin subcommands manage what the API's admin endpoints manage,
// straight on the database:
//
//	anycatch-server key create --scope admin --name ops [--rate 600]   prints the key once
//	anycatch-server key list | key revoke ID
//	anycatch-server target create --name k-root --addr4 193.0.14.129 [--addr6 …] [--interval 300]
//	anycatch-server target list | target update NAME [--description D] [--interval S] [--enabled=false] | target delete NAME
//	anycatch-server site create|update TARGET CODE [--name N] [--lat X --lon Y] [--unicast4 A] | site list TARGET | site delete TARGET CODE
//	anycatch-server rule create TARGET --match regex --pattern 'RE' [--source any] [--site S] | rule list TARGET | rule delete TARGET POSITION

// adminCmd parses one admin subcommand's flags and opens the database.
// Each action has a flag set of its own: an action refuses the flags of
// its siblings ("alert list --threshold 5" is an error, not ignored), and
// its -h lists only its flags.
type adminCmd struct {
	fs     *flag.FlagSet
	unused *flag.FlagSet // takes the flags of the other actions
	dbf    dbFlags
	action string
	stdout io.Writer
	args   []string // positional arguments, flags may come before or after them
}

func (c *adminCmd) arg(i int) string { return c.args[i] }

func newAdminCmd(group string, args []string, stderr, stdout io.Writer, actions ...string) (*adminCmd, error) {
	if len(args) == 0 || !slices.Contains(actions, args[0]) {
		return nil, fmt.Errorf("%s: want one of %v", group, actions)
	}
	c := &adminCmd{fs: flag.NewFlagSet(group+" "+args[0], flag.ContinueOnError), action: args[0], stdout: stdout,
		unused: flag.NewFlagSet("", flag.ContinueOnError)}
	c.fs.SetOutput(stderr)
	c.dbf.register(c.fs)
	return c, nil
}

// flags is the flag set to define a flag of actions on: the action's own
// when it is one of them, else one nobody parses (the variable keeps its
// default).
func (c *adminCmd) flags(actions ...string) *flag.FlagSet {
	if slices.Contains(actions, c.action) {
		return c.fs
	}
	return c.unused
}

// open parses args (after the action) and opens the database; positional
// arguments must number want.
func (c *adminCmd) open(ctx context.Context, args []string, want int) (*database, error) {
	pos, err := cliflag.Parse(c.fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.fs.Name(), err)
	}
	c.args = pos
	if len(c.args) != want {
		return nil, fmt.Errorf("%s: want %d argument(s), got %d", c.fs.Name(), want, len(c.args))
	}
	db, err := openDatabase(ctx, c.dbf, store.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.close()
		return nil, err
	}
	return db, nil
}

func cmdKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := newAdminCmd("key", args, stderr, stdout, "create", "list", "revoke")
	if err != nil {
		return err
	}
	scope := c.flags("create").String("scope", "read", "read or admin")
	name := c.flags("create").String("name", "", "label")
	rate := c.flags("create").Int("rate", 0, "requests per minute; 0 = server default")
	want := map[string]int{"create": 0, "list": 0, "revoke": 1}[c.action]
	db, err := c.open(ctx, args[1:], want)
	if err != nil {
		return err
	}
	defer db.close()
	st := pgstore.New(db.DB)
	switch c.action {
	case "create":
		var r *int
		if *rate > 0 {
			r = rate
		}
		k, secret, err := api.CreateKey(ctx, st, *name, *scope, r)
		if err != nil {
			return fmt.Errorf("key create: %w", err)
		}
		fmt.Fprintf(stdout, "%s\n", secret)
		fmt.Fprintf(stderr, "created key %d (%s, scope %s); the key above is shown only once\n", k.ID, k.Prefix, k.Scope)
	case "list":
		keys, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPREFIX\tSCOPE\tNAME\tCREATED\tREVOKED")
		for _, k := range keys {
			rev := "-"
			if k.RevokedAt != nil {
				rev = k.RevokedAt.Format("2006-01-02T15:04Z")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Scope, k.Name, k.CreatedAt.Format("2006-01-02T15:04Z"), rev)
		}
		return tw.Flush()
	case "revoke":
		id, err := strconv.ParseInt(c.arg(0), 10, 64)
		if err != nil {
			return fmt.Errorf("key revoke: %q is not a key id", c.arg(0))
		}
		if err := st.RevokeKey(ctx, id); err != nil {
			return fmt.Errorf("key revoke %d: %w", id, err)
		}
	}
	return nil
}

func cmdTarget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := newAdminCmd("target", args, stderr, stdout, "create", "list", "update", "delete")
	if err != nil {
		return err
	}
	name := c.flags("create").String("name", "", "target name")
	edit := c.flags("create", "update")
	addr4 := edit.String("addr4", "", "IPv4 anycast address")
	addr6 := edit.String("addr6", "", "IPv6 anycast address")
	desc := edit.String("description", "", "description")
	interval := edit.Int("interval", 300, "seconds between measurements")
	enabled := edit.Bool("enabled", true, "measure this target")
	kinds := edit.String("measure", "identity,ping,trace", "what probes measure, comma-separated: identity, ping, trace, dns (defaults for each)")
	service := c.flags("create").String("service", "", "create from a service in the identity rules (e.g. k-root, quad9): its addresses, identity order and rules")
	rulesPath := c.flags("create").String("rules", "", "rules file for --service (default: the rules shipped with anycatch)")
	want := map[string]int{"create": 0, "list": 0, "update": 1, "delete": 1}[c.action]
	db, err := c.open(ctx, args[1:], want)
	if err != nil {
		return err
	}
	defer db.close()
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch c.action {
	case "create":
		specs, err := parseSpecs(*kinds)
		if err != nil {
			return fmt.Errorf("target create: %w", err)
		}
		t := store.Target{Name: *name, Description: *desc, Addr4: *addr4, Addr6: *addr6, IntervalSec: *interval, Enabled: *enabled,
			Specs: specs, IdentityOrder: []string{catchment.SourceHostnameBind, catchment.SourceIDServer, catchment.SourceNSID}}
		var rules []catchment.Rule
		if *service != "" {
			svc, err := findService(*rulesPath, *service)
			if err != nil {
				return fmt.Errorf("target create: %w", err)
			}
			fromService(&t, svc, set)
			rules = svc.Rules
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("target create: %w", err)
		}
		if err := catchment.ValidateRules(t.IdentityOrder, rules); err != nil {
			return fmt.Errorf("target create: rules: %w", err)
		}
		if err := db.CreateTarget(ctx, &t); err != nil {
			return fmt.Errorf("target create: %w", err)
		}
		if len(rules) > 0 {
			if err := db.ReplaceRules(ctx, t.ID, rules); err != nil {
				return fmt.Errorf("target create: rules: %w", err)
			}
		}
		fmt.Fprintf(stdout, "created target %d %s (%s %s), measuring %s every %d s with %d identity rules\n",
			t.ID, t.Name, t.Addr4, t.Addr6, *kinds, t.IntervalSec, len(rules))
	case "list":
		ts, err := db.ListTargets(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tADDR4\tADDR6\tINTERVAL\tENABLED")
		for _, t := range ts {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%v\n", t.ID, t.Name, t.Addr4, t.Addr6, t.IntervalSec, t.Enabled)
		}
		return tw.Flush()
	case "update":
		t, err := db.GetTarget(ctx, c.arg(0))
		if err != nil {
			return fmt.Errorf("target update: %w", err)
		}
		if set["addr4"] {
			t.Addr4 = *addr4
		}
		if set["addr6"] {
			t.Addr6 = *addr6
		}
		if set["description"] {
			t.Description = *desc
		}
		if set["interval"] {
			t.IntervalSec = *interval
		}
		if set["enabled"] {
			t.Enabled = *enabled
		}
		if set["measure"] {
			if t.Specs, err = parseSpecs(*kinds); err != nil {
				return fmt.Errorf("target update: %w", err)
			}
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("target update: %w", err)
		}
		if err := db.UpdateTarget(ctx, t); err != nil {
			return fmt.Errorf("target update: %w", err)
		}
	case "delete":
		t, err := db.GetTarget(ctx, c.arg(0))
		if err != nil {
			return fmt.Errorf("target delete: %w", err)
		}
		return db.DeleteTarget(ctx, t.ID)
	}
	return nil
}

func cmdSite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := newAdminCmd("site", args, stderr, stdout, "create", "update", "list", "delete")
	if err != nil {
		return err
	}
	edit := c.flags("create", "update")
	name := edit.String("name", "", "site name")
	lat := edit.Float64("lat", 0, "latitude")
	lon := edit.Float64("lon", 0, "longitude")
	u4 := edit.String("unicast4", "", "the site's IPv4 unicast address")
	u6 := edit.String("unicast6", "", "the site's IPv6 unicast address")
	want := map[string]int{"create": 2, "update": 2, "list": 1, "delete": 2}[c.action]
	db, err := c.open(ctx, args[1:], want)
	if err != nil {
		return err
	}
	defer db.close()
	t, err := db.GetTarget(ctx, c.arg(0))
	if err != nil {
		return fmt.Errorf("site: target %q: %w", c.arg(0), err)
	}
	switch c.action {
	case "create", "update":
		s := store.Site{Code: c.arg(1), Name: *name, Unicast4: *u4, Unicast6: *u6}
		set := map[string]bool{}
		c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["lat"] != set["lon"] {
			return errors.New("site: give --lat and --lon together")
		}
		if set["lat"] {
			s.Lat, s.Lon = lat, lon
		}
		if err := s.Validate(); err != nil {
			return fmt.Errorf("site %s: %w", c.action, err)
		}
		return db.PutSite(ctx, t.ID, s)
	case "list":
		ss, err := db.ListSites(ctx, t.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CODE\tNAME\tLAT\tLON\tUNICAST4\tUNICAST6")
		for _, s := range ss {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Code, s.Name, fptr(s.Lat), fptr(s.Lon), s.Unicast4, s.Unicast6)
		}
		return tw.Flush()
	case "delete":
		return db.DeleteSite(ctx, t.ID, c.arg(1))
	}
	return nil
}

func fptr(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func cmdRule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := newAdminCmd("rule", args, stderr, stdout, "create", "list", "delete")
	if err != nil {
		return err
	}
	var r catchment.Rule
	create := c.flags("create")
	create.StringVar(&r.Source, "source", catchment.SourceAny, "hostname_bind, id_server, nsid or any")
	create.StringVar(&r.Match, "match", "regex", "regex or exact")
	create.StringVar(&r.Pattern, "pattern", "", "regex with a (?P<site>…) group, or the exact identity")
	create.StringVar(&r.Site, "site", "", "site code (exact rules, or a regex without a site group)")
	create.StringVar(&r.Note, "note", "", "where the rule comes from")
	want := map[string]int{"create": 1, "list": 1, "delete": 2}[c.action]
	db, err := c.open(ctx, args[1:], want)
	if err != nil {
		return err
	}
	defer db.close()
	t, err := db.GetTarget(ctx, c.arg(0))
	if err != nil {
		return fmt.Errorf("rule: target %q: %w", c.arg(0), err)
	}
	rules, err := db.ListRules(ctx, t.ID)
	if err != nil {
		return err
	}
	switch c.action {
	case "create":
		rules = append(rules, r)
		if err := catchment.ValidateRules(t.IdentityOrder, rules); err != nil {
			return fmt.Errorf("rule create: %w", err)
		}
		return db.ReplaceRules(ctx, t.ID, rules)
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POS\tSOURCE\tMATCH\tPATTERN\tSITE\tNOTE")
		for i, r := range rules {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, r.Source, r.Match, r.Pattern, r.Site, r.Note)
		}
		return tw.Flush()
	case "delete":
		pos, err := strconv.Atoi(c.arg(1))
		if err != nil || pos < 1 || pos > len(rules) {
			return fmt.Errorf("rule delete: position %q is not 1..%d", c.arg(1), len(rules))
		}
		return db.ReplaceRules(ctx, t.ID, append(rules[:pos-1], rules[pos:]...))
	}
	return nil
}

// parseSpecs turns "identity,ping" into default specs of those kinds.
func parseSpecs(list string) ([]measure.Spec, error) {
	var specs []measure.Spec
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		kind, err := measure.ParseKind(k)
		if err != nil {
			return nil, fmt.Errorf("--measure: %w", err)
		}
		specs = append(specs, measure.Spec{Kind: kind})
	}
	if len(specs) == 0 {
		return nil, errors.New("--measure: name at least one of identity, ping, trace, dns")
	}
	return specs, nil
}

// findService loads a rules file ("" = the shipped rules) and picks a
// service by name.
func findService(path, name string) (*rulesets.Service, error) {
	svcs, err := rulesets.Load(path)
	if err != nil {
		return nil, err
	}
	svc := rulesets.Find(svcs, name)
	if svc == nil {
		names := make([]string, len(svcs))
		for i, s := range svcs {
			names[i] = s.Name
		}
		return nil, fmt.Errorf("--service %q is not in the rules (have: %s)", name, strings.Join(names, ", "))
	}
	return svc, nil
}

// fromService fills what the flags did not set from a rules service: name,
// description, first IPv4 and IPv6 address, identity order.
func fromService(t *store.Target, svc *rulesets.Service, set map[string]bool) {
	if !set["name"] {
		t.Name = svc.Name
	}
	if !set["description"] {
		t.Description = svc.Description
	}
	for _, a := range svc.Addresses {
		ip, err := netip.ParseAddr(a)
		switch {
		case err != nil:
		case ip.Is4() && t.Addr4 == "" && !set["addr4"]:
			t.Addr4 = a
		case ip.Is6() && t.Addr6 == "" && !set["addr6"]:
			t.Addr6 = a
		}
	}
	if len(svc.IdentityOrder) > 0 {
		t.IdentityOrder = svc.IdentityOrder
	}
}
