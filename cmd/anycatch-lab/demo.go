package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anycatch/anycatch/lab"
	"github.com/anycatch/anycatch/lab/labstack"
)

// runDemo is `anycatch-lab demo`: the whole platform on the default lab,
// until Ctrl-C.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	self, _ := os.Executable()
	binDir := filepath.Dir(self)
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o labstack.Options
	fs.StringVar(&o.Name, "name", "demo", "lab instance name (1-8 of [a-z0-9])")
	fs.StringVar(&o.ServerBin, "server-bin", filepath.Join(binDir, "anycatch-server"), "anycatch-server binary")
	fs.StringVar(&o.ProbeBin, "probe-bin", filepath.Join(binDir, "anycatch-probe"), "anycatch-probe binary")
	fs.StringVar(&o.SiteBin, "site-bin", filepath.Join(binDir, "anycatch-site"), "anycatch-site binary (census agents at the sites; skipped when missing)")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "where the server (API and map) listens on this machine")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL URL; empty runs the server's embedded database in --data-dir")
	fs.StringVar(&o.WorkDir, "work-dir", "/var/lib/anycatch-demo", "server data, probe state and logs")
	fs.IntVar(&o.IntervalSec, "interval", 10, "seconds between measurements of the lab target (10..86400)")
	topoPath := fs.String("topology", "", "topology YAML file (default: the embedded default topology)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: anycatch-lab demo [flags]

Runs the whole anycatch platform on this machine (root): the anycast lab,
anycatch-server with its embedded PostgreSQL, an anycast DNS target with the
lab's sites and identity rules, and one anycatch-probe per lab client. Prints
the URL of the catchment map, keeps running until Ctrl-C, then removes
everything it started (the data in --work-dir stays for the next run).

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo: unexpected argument %q", fs.Arg(0))
	}
	if err := lab.Preflight(); err != nil {
		return err
	}
	for _, b := range []string{o.ServerBin, o.ProbeBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("demo: %w (build with `make build`)", err)
		}
	}
	// The census (docs/census.md) runs when its agent was built.
	if _, err := os.Stat(o.SiteBin); err == nil {
		o.Census = true
	}
	if *topoPath != "" {
		t, err := lab.LoadTopology(*topoPath)
		if err != nil {
			return err
		}
		o.Topology = t
	}
	o.Log = stderr

	start := time.Now()
	s, err := labstack.Start(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "demo: stopping probes, server and lab …")
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Stop(sctx); err != nil {
			fmt.Fprintln(stderr, "demo: stop:", err)
		} else {
			fmt.Fprintln(stderr, "demo: everything stopped and removed")
		}
	}()

	fmt.Fprintf(stderr, "demo: waiting for the probes' first results (one measurement interval, %d s) …\n", o.IntervalSec)
	matched := waitForTruth(ctx, s, 2*time.Minute+time.Duration(o.IntervalSec)*time.Second)
	if ctx.Err() != nil {
		return nil
	}

	bin := "anycatch-lab"
	if self != "" {
		bin = self
	}
	sites := make([]string, 0)
	for _, site := range s.Lab.Sites() {
		sites = append(sites, site.Code)
	}
	sort.Strings(sites)
	status := "the map shows the lab's catchment"
	if !matched {
		status = "the catchment does not match the lab's truth yet: see the logs in " + o.WorkDir
	}
	fmt.Fprintf(stdout, `
  anycatch is running (%s after start; %s).

    Catchment map:  %s/
    API:            %s/api/v1/targets/%s/catchment   (admin key: %s)

  Move the catchment: withdraw a site's BGP announcement, watch the map change
  within one interval (%d s), then restore it:

    sudo %s withdraw --name %s ams
    sudo %s restore  --name %s ams

  Sites: %s. The routers' ground truth:  sudo %s truth --name %s
  Logs: %s/*.log    Press Ctrl-C to stop and clean up.
`, time.Since(start).Round(time.Second), status, s.URL, s.URL, s.Target, s.AdminKey,
		o.IntervalSec, bin, o.Name, bin, o.Name, strings.Join(sites, ", "), bin, o.Name, o.WorkDir)
	if o.Census {
		first := s.Lab.Sites()[0].Code
		fmt.Fprintf(stdout, `
  Census (docs/census.md): one site pings every lab network from the anycast
  address; the map's census layer shows where the replies landed:

    curl -X POST -H 'Authorization: Bearer %s' -d '{"sender":"%s","hitlist":"%s","prefix6":64}' \
      %s/api/v1/targets/%s/census/rounds
    curl %s/api/v1/targets/%s/census
`, s.AdminKey, first, labstack.CensusHitlist, s.URL, s.Target, s.URL, s.Target)
	}
	<-ctx.Done()
	return nil
}

// waitForTruth polls until the API's IPv4 catchment equals the lab's truth,
// printing what is still missing now and then.
func waitForTruth(ctx context.Context, s *labstack.Stack, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	lastPrint := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		exp, err1 := s.Expect(ctx, 4)
		got, err2 := s.Catchment(ctx, 4)
		if err := errors.Join(err1, err2); err == nil {
			miss := labstack.Mismatches(exp, got)
			if miss == nil {
				return true
			}
			if time.Since(lastPrint) > 10*time.Second {
				fmt.Fprintf(os.Stderr, "demo: %d of %d clients observed as the routers say …\n", len(exp)-len(miss), len(exp))
				lastPrint = time.Now()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return false
}
