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
	"sort"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/agent"
)

// runStatusCmd is the `status` subcommand: it reads the agent's status
// file, so it works without privileges beyond reading the state directory
// and without talking to the agent or the collector.
func runStatusCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	stateDir := fs.String("state-dir", defaultSettings().StateDir, "the agent's state directory (env ANYCATCH_STATE_DIR)")
	asJSON := fs.Bool("json", false, "print the status file as JSON")
	check := fs.Bool("check", false, "health check: print one line, exit 0 if the agent is running and its status is fresh, else 1")
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: anycatch-probe status [--state-dir D] [--json | --check]\n\nShow what the local probe agent is doing.\n\nFlags:\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) { // Parse already printed fs.Usage
			return exitOK
		}
		fmt.Fprintf(stderr, "anycatch-probe status: %v\n", err)
		return exitUsage
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "anycatch-probe status: unexpected argument %q (status takes only flags)\n", pos[0])
		return exitUsage
	}
	// The agent's state directory from the environment, as run reads it;
	// the output switches are the command line's only.
	if err := (cliflag.Env{Names: map[string]string{"json": "", "check": ""}}).Apply(fs, os.Getenv); err != nil {
		fmt.Fprintf(stderr, "anycatch-probe status: %v\n", err)
		return exitUsage
	}
	st, err := agent.ReadStatus(*stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "anycatch-probe status: no status in %s (has the agent run there?): %v\n", *stateDir, err)
		return exitCannotRun
	}
	now := time.Now()
	health := st.Healthy(now)
	switch {
	case *check:
		if health != nil {
			fmt.Fprintf(stdout, "unhealthy: %v\n", health)
			return exitNoAnswer
		}
		fmt.Fprintf(stdout, "ok: probe %s running, %d results pending upload\n", st.Probe, st.Spool.Pending)
		return exitOK
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	default:
		renderStatus(stdout, st, now)
	}
	if health != nil {
		return exitNoAnswer
	}
	return exitOK
}

// renderStatus prints st for a volunteer.
func renderStatus(w io.Writer, st *agent.Status, now time.Time) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := now.Sub(t)
		if d < 0 {
			d = 0
		}
		return d.Round(time.Second).String() + " ago"
	}
	line := func(k, format string, a ...any) { fmt.Fprintf(w, "%-13s %s\n", k, fmt.Sprintf(format, a...)) }
	state := st.State
	if err := st.Healthy(now); err != nil && st.State == "running" {
		state = "not running? " + err.Error()
	}
	probe := st.Probe
	if probe == "" {
		probe = "(not enrolled)"
	}
	line("probe", "%s — %s (pid %d, status updated %s)", probe, state, st.PID, ago(st.Updated))
	line("collector", "%s", st.Collector)
	line("version", "%s, started %s", st.Version, ago(st.Started))
	sched := "none yet"
	if st.Schedule.Version != "" {
		sched = fmt.Sprintf("%s: %d measurements, %d refused; checked %s", st.Schedule.Version, st.Schedule.Measurements, len(st.Schedule.Refused), ago(st.Schedule.CheckedAt))
	}
	line("schedule", "%s", sched)
	priv := "refused"
	if st.AllowPrivate {
		priv = "ALLOWED"
	}
	line("limits", "%d packets/s, %d concurrent, private targets %s", st.MaxPPS, st.MaxConc, priv)
	c := st.Capabilities
	yes := map[bool]string{true: "yes", false: "no"}
	line("capabilities", "ping %s, trace %s, raw sockets %s, IPv4 %s, IPv6 %s", orNone(c.PingMode), orNone(c.TraceMode), yes[c.Privileged], yes[c.IPv4], yes[c.IPv6])
	var runs []string
	kinds := make([]string, 0, len(st.Runs))
	for k := range st.Runs {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		kc := st.Runs[measure.Kind(k)]
		runs = append(runs, fmt.Sprintf("%s %d (%d failed)", k, kc.Runs, kc.Errors))
	}
	if len(runs) == 0 {
		runs = []string{"none yet"}
	}
	line("runs", "%s; %d skipped", strings.Join(runs, ", "), st.Skipped)
	oldest := ""
	if !st.Spool.Oldest.IsZero() {
		oldest = ", oldest " + ago(st.Spool.Oldest)
	}
	line("spool", "%d pending (%.1f KiB)%s, %d dropped by limits, %d corrupt", st.Spool.Pending, float64(st.Spool.Bytes)/1024, oldest, st.Spool.Dropped, st.Spool.Corrupt)
	up := fmt.Sprintf("%d accepted, %d duplicate, %d rejected; last success %s", st.Upload.Accepted, st.Upload.Duplicate, st.Upload.Rejected, ago(st.Upload.LastOK))
	if st.Upload.BackoffUntil.After(now) {
		up += fmt.Sprintf("; backing off for %s", st.Upload.BackoffUntil.Sub(now).Round(time.Second))
	}
	line("upload", "%s", up)
	line("heartbeat", "%s", ago(st.Heartbeat))
	if st.Live.State != "" {
		live := fmt.Sprintf("%s since %s, %d connects, %d measure-now requests", st.Live.State, ago(st.Live.Since), st.Live.Connects, st.Live.Nudges)
		if st.Live.State != "connected" && st.Live.LastError != "" {
			live += "; last error: " + st.Live.LastError
		}
		line("live", "%s", live)
	}
	for i, r := range st.Schedule.Refused {
		if i == 5 {
			line("", "… and %d more (see --json)", len(st.Schedule.Refused)-5)
			break
		}
		line(cond(i == 0, "refused", ""), "%s %s: %s", r.ID, r.Address, r.Reason)
	}
	for i, l := range st.Limitations {
		line(cond(i == 0, "limitations", ""), "%s", l)
	}
	for i, e := range st.Errors {
		line(cond(i == 0, "recent errors", ""), "%s %s: %s", e.Time.Local().Format(time.DateTime), e.Op, e.Message)
	}
}

func orNone(s string) string {
	if s == "" {
		return "unavailable"
	}
	return s
}

func cond(b bool, x, y string) string {
	if b {
		return x
	}
	return y
}
