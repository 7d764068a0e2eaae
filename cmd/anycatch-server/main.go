// Command anycatch-server runs the anycatch collector, API and web UI over
// one PostgreSQL database, and the tools that manage them.
//
//	anycatch-server [serve] [flags]   run the server (the default)
//	anycatch-server migrate [flags]   apply database migrations
//	anycatch-server help              list every subcommand
//
// Without --database-url (or $DATABASE_URL) the server runs a private
// PostgreSQL cluster in <data-dir>/postgres.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand. run gets the arguments after the subcommand
// name and should return flag.ErrHelp after printing help for -h.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the subcommand registry, in help order. To add one, write
// cmd_<name>.go with a func of the run signature and add one line here.
var commands = []command{
	{"serve", "run the collector, API and web UI (the default)", cmdServe},
	{"migrate", "apply database migrations and print the schema version", cmdMigrate},
	{"token", "manage probe enrollment tokens", cmdToken},
	{"reidentify", "re-apply a target's identity rules to its stored results", cmdReidentify},
	{"rollup", "rebuild the rollups reports read over a time range", cmdRollup},
	{"import", "import RIPE Atlas result files as results of a target", cmdImport},
	{"target", "manage targets (create, list, update, delete)", cmdTarget},
	{"site", "manage a target's sites (create, list, update, delete)", cmdSite},
	{"rule", "manage a target's identity rules (create, list, delete)", cmdRule},
	{"rules", "convert an egress table (e.g. Google Public DNS locations) into identity rules", cmdRules},
	{"key", "manage API keys (create, list, revoke)", cmdKey},
	{"probe", "disable or enable a probe or census site agent", cmdProbe},
	{"measure", "run an on-demand measurement on a running server and print results as they arrive", cmdMeasure},
	{"alert", "manage alert rules and webhooks, list alerts, send a test", cmdAlert},
	{"healthcheck", "ask a running server whether it and its database are healthy", cmdHealthcheck},
	{"version", "print the version", cmdVersion},
	{"seed", "fill a database with synthetic data and benchmark the API queries", cmdSeed},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "anycatch-server:", err)
		os.Exit(1)
	}
}

// run dispatches args to a subcommand; no subcommand (or a flag first)
// means serve.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		return cmdVersion(ctx, nil, stdout, stderr)
	}
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		if len(args) > 0 {
			return run(ctx, []string{args[0], "-h"}, stdout, stderr)
		}
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, args, stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown subcommand %q", name)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: anycatch-server [subcommand] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "subcommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'anycatch-server help <subcommand>' for its flags.")
}

func cmdVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments")
	}
	fmt.Fprintf(stdout, "anycatch-server %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
