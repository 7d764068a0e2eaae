// Command anycatch-lab builds and drives the anycatch anycast lab: network
// namespaces with anycast sites (NSD + BIRD2), transit routers, clients
// and a management network. See docs/lab.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/internal/cliflag"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"syscall"
	"text/tabwriter"

	"github.com/anycatch/anycatch/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "anycatch-lab:", err)
		os.Exit(1)
	}
}

// exitError carries the exit status of a command run by 'exec'.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

const usage = `usage: anycatch-lab COMMAND [flags]

Builds an anycast lab out of network namespaces on this machine (root).

commands:
  up        build and start the lab (--topology FILE, --collector-port PORT)
  down      stop every lab process and delete its namespaces (idempotent)
  status    namespaces, processes and BGP sessions
  truth     JSON: the site each client's best path leads to, expected RTT
  exec      run a command in a node's namespace: exec NODE -- CMD...
  withdraw  stop a site's anycast announcement: withdraw SITE
  restore   re-announce a site's anycast prefixes: restore SITE
  demo      run the whole platform on the lab (server, target, a probe per client)

Every command takes --name NAME (default acl) and --state-dir DIR
(default /run/anycatch-lab/NAME). 'anycatch-lab COMMAND --help' for more.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "version") {
		fmt.Fprintf(stdout, "anycatch-lab %s (%s)\n", version, runtime.Version())
		return nil
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return errors.New("missing command")
		}
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "delay", "forward", "siteweb": // hidden: the lab's own daemons
		return lab.RunDaemon(ctx, append([]string{cmd}, args...), stdout, stderr)
	case "demo":
		return runDemo(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts lab.Options
	fs.StringVar(&opts.Name, "name", "acl", "lab instance name (1-8 of [a-z0-9]); namespaces are NAME-NODE")
	fs.StringVar(&opts.StateDir, "state-dir", "", "state directory (default /run/anycatch-lab/NAME)")
	var (
		topoPath, collectorPort, clean = new(string), new(int), new(bool)
	)
	var synopsis, help string
	switch cmd {
	case "up":
		synopsis, help = "up [--topology FILE] [--collector-port PORT] [--clean]",
			"Builds the lab and waits for BGP to converge. Refuses if the instance exists\nunless --clean. Processes keep running after this command exits."
		fs.StringVar(topoPath, "topology", "", "topology YAML file (default: the embedded default topology)")
		fs.IntVar(collectorPort, "collector-port", 0, "also forward MGMT:PORT in the lab to 127.0.0.1:PORT on the host")
		fs.BoolVar(clean, "clean", false, "remove an existing instance of the same name first")
	case "down":
		synopsis, help = "down", "Kills the lab's processes (recorded and found) and deletes every NAME-* namespace."
	case "status":
		synopsis, help = "status", "Shows namespaces, processes and BGP sessions."
	case "truth":
		synopsis, help = "truth", "Prints JSON: for every client, the site its BGP best path leads to and the\nexpected RTT from the configured one-way link delays."
	case "exec":
		synopsis, help = "exec NODE -- CMD [ARGS...]", "Runs CMD inside NODE's namespace (NODE: a site, transit, client or mgmt)."
	case "withdraw", "restore":
		synopsis, help = cmd+" SITE", "Disables (withdraw) or enables (restore) SITE's BGP announcement of the\nanycast prefixes."
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: anycatch-lab %s\n\n%s\n\nflags:\n", synopsis, help)
		fs.PrintDefaults()
	}
	var rest []string
	if cmd == "exec" {
		// NODE, then a command with flags of its own: flags end at NODE.
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest = fs.Args()
	} else {
		// Flags anywhere ("withdraw ams --name demo"), and no stray
		// argument: "down demo" used to tear down the default instance.
		var err error
		if rest, err = cliflag.Parse(fs, args); err != nil {
			return err
		}
		if want := map[string]int{"withdraw": 1, "restore": 1}[cmd]; len(rest) != want {
			fs.Usage()
			if want == 1 {
				return errors.New(cmd + ": need exactly one SITE")
			}
			return fmt.Errorf("%s: unexpected argument %q (it takes only flags)", cmd, rest[0])
		}
	}

	switch cmd {
	case "up":
		if err := lab.Preflight(); err != nil {
			return err
		}
		topo := lab.DefaultTopology()
		if *topoPath != "" {
			var err error
			if topo, err = lab.LoadTopology(*topoPath); err != nil {
				return err
			}
		}
		if *clean {
			if err := lab.Down(ctx, opts); err != nil {
				return err
			}
		}
		opts.Detach = true
		opts.Log = stderr
		l, err := lab.Up(ctx, topo, opts)
		if err != nil {
			return err
		}
		if *collectorPort != 0 {
			ap, err := l.ForwardCollector(ctx, *collectorPort)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "collector: http://%s -> 127.0.0.1:%d\n", ap, *collectorPort)
		}
		return printTruth(ctx, l, stdout, false)
	case "down":
		return lab.Down(ctx, opts)
	}
	l, err := lab.Open(opts)
	if err != nil {
		return err
	}
	switch cmd {
	case "status":
		return printStatus(ctx, l, stdout)
	case "truth":
		return printTruth(ctx, l, stdout, true)
	case "withdraw", "restore":
		if len(rest) != 1 {
			fs.Usage()
			return errors.New(cmd + ": need exactly one SITE")
		}
		if cmd == "withdraw" {
			return l.Withdraw(ctx, rest[0])
		}
		return l.Restore(ctx, rest[0])
	case "exec":
		if len(rest) < 2 {
			fs.Usage()
			return errors.New("exec: need NODE -- CMD")
		}
		node, argv := rest[0], rest[1:]
		if argv[0] == "--" {
			argv = argv[1:]
		}
		if l.Namespace(node) == "" || len(argv) == 0 {
			return fmt.Errorf("exec: unknown node %q or empty command", node)
		}
		c := l.CommandContext(ctx, node, argv...)
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, stdout, stderr
		err := c.Run()
		var xe *exec.ExitError
		if errors.As(err, &xe) {
			return &exitError{code: xe.ExitCode()}
		}
		return err
	}
	return nil
}

func printTruth(ctx context.Context, l *lab.Lab, w io.Writer, asJSON bool) error {
	t, err := l.Truth(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(t)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tREGION\tSITE v4\tRTT v4\tSITE v6\tRTT v6\tPATH v4")
	for _, c := range t.Clients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%v\t%v\n", c.Client, c.Region, c.V4.Site, c.V4.ExpectedRTT, c.V6.Site, c.V6.ExpectedRTT, c.V4.Forward)
	}
	return tw.Flush()
}

func printStatus(ctx context.Context, l *lab.Lab, w io.Writer) error {
	s, err := l.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "lab %s (state %s)\n", s.Name, s.StateDir)
	if s.CollectorPort != 0 {
		fmt.Fprintf(w, "collector forward: %s:%d -> 127.0.0.1:%d\n", l.MgmtAddr(), s.CollectorPort, s.CollectorPort)
	}
	var missing []string
	for ns, ok := range s.Namespaces {
		if !ok {
			missing = append(missing, ns)
		}
	}
	sort.Strings(missing)
	fmt.Fprintf(w, "namespaces: %d, missing: %v\n", len(s.Namespaces), missing)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tNODE\tPID\tALIVE")
	for _, p := range s.Procs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%v\n", p.Role, p.Node, p.PID, p.Alive)
	}
	fmt.Fprintln(tw, "\nNODE\tBGP SESSION\tSTATE\tINFO")
	for _, b := range s.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Node, b.Proto, b.State, b.Info)
	}
	return tw.Flush()
}
