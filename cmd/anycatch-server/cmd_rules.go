package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/internal/cliflag"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/anycatch/anycatch/catchment/rulesets"
)

// cmdRules works on identity rules files; today it converts egress tables.
func cmdRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "egress" {
		fmt.Fprintln(stderr, "usage: anycatch-server rules egress [flags] FILE|-")
		return errors.New("rules: want the egress subcommand")
	}
	fs := flag.NewFlagSet("rules egress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	service := fs.String("service", "google-dns", "service name of the printed rules")
	note := fs.String("note", "", "the table's source and date, put in every rule's note (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: anycatch-server rules egress [--service NAME] --note "SOURCE, DATE" FILE|-

Reads an egress table (one "prefix site" or "site prefix" per line, as
Google's Public DNS FAQ and "dig +short TXT locations.publicdns.goog" print
it) and prints a rules file with one egress_addr prefix rule per line for
the service. Prefixes listed for two sites are left out and reported.`)
		fs.PrintDefaults()
	}
	pos, err := cliflag.Parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 || strings.TrimSpace(*note) == "" {
		fs.Usage()
		return errors.New("rules egress: want one FILE and --note")
	}
	in := io.Reader(os.Stdin)
	if p := pos[0]; p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("rules egress: %w", err)
		}
		defer f.Close()
		in = f
	}
	entries, conflicts, err := rulesets.ParseEgressTable(in)
	if err != nil {
		return fmt.Errorf("rules egress: %w", err)
	}
	if len(entries) == 0 {
		return errors.New("rules egress: the table has no entries")
	}
	for _, p := range conflicts {
		fmt.Fprintf(stderr, "rules egress: %s is listed for two sites; left out\n", p)
	}
	svc := rulesets.Service{Name: *service, IdentityOrder: []string{"egress_addr"}, Rules: rulesets.EgressRules(entries, *note)}
	out, err := yaml.Marshal(map[string]any{"services": []rulesets.Service{svc}})
	if err != nil {
		return fmt.Errorf("rules egress: %w", err)
	}
	// What we print must load back.
	if _, err := rulesets.Parse(out); err != nil {
		return fmt.Errorf("rules egress: generated rules do not load: %w", err)
	}
	_, err = stdout.Write(out)
	return err
}
