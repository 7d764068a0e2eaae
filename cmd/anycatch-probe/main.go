// Command anycatch-probe measures anycast services. One-shot subcommands
// (ping, trace, dns, identity) measure a target once and print a readable
// report or, with --json, the wire-format result; the agent subcommands
// run scheduled measurements for a collector.
//
// Exit codes, for scripts:
//
//	0  measured and got an answer
//	1  measured, but no answer (100% loss, timeout, destination not reached)
//	2  usage error
//	3  could not measure (no permission, no route, unresolvable target)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK        = 0
	exitNoAnswer  = 1
	exitUsage     = 2
	exitCannotRun = 3
)

// command is one subcommand. run gets the arguments after the
// subcommand's name and returns the exit code.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands is the subcommand registry, in the order help lists them. Add
// a subcommand with one line here.
var commands = []command{
	{"ping", "ICMP echo a target, like ping(8)", runPing},
	{"trace", "Paris traceroute to a target, with MPLS labels", runTrace},
	{"dns", "send one DNS query (any class and type), like dig", runDNS},
	{"identity", "ask a DNS server who it is: CHAOS hostname.bind, id.server and NSID", runIdentity},
	{"http", "one HTTP(S) request: status, timings, site headers, certificate", runHTTPCmd},
	{"ntp", "one NTP query: stratum, reference id, RTT, offset", runNTPCmd},
	{"run", "run the probe agent for a collector until stopped", runAgentCmd},
	{"status", "show what the local probe agent is doing", runStatusCmd},
	{"version", "print the version", runVersion},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args[0] to its subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(ctx, nil, stdout, stderr)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "anycatch-probe: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: anycatch-probe COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run "anycatch-probe COMMAND --help" for a command's flags and examples.

Exit codes: 0 answered, 1 no answer (loss/timeout/not reached), 2 usage error,
3 could not measure (permissions, no route, unresolvable target).
`)
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "anycatch-probe: version takes no arguments\n")
		return exitUsage
	}
	fmt.Fprintf(stdout, "anycatch-probe %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
