// Command anycatch-site is the census agent that runs at each anycast site
// of a target (docs/census.md). It needs root or CAP_NET_RAW for its raw
// ICMP sockets, and a one-time site token from the server's admin:
//
//	anycatch-site --collector https://collector.example.net \
//	    --enroll-token acs_… --state-dir /var/lib/anycatch-site
//
// Every flag can also be set as ANYCATCH_<FLAG> (upper case, '-' as '_').
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/internal/cliflag"
	"github.com/anycatch/anycatch/site"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "anycatch-site:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("anycatch-site", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg site.Config
	fs.StringVar(&cfg.Collector, "collector", "", "collector URL (required)")
	fs.StringVar(&cfg.StateDir, "state-dir", "/var/lib/anycatch-site", "identity, spool of replies and round records")
	fs.StringVar(&cfg.EnrollToken, "enroll-token", "", "one-time site token (POST /api/v1/targets/T/census/sites/S/token); needed until enrolled")
	fs.StringVar(&cfg.HitlistDir, "hitlist-dir", "", "directory of hitlist files rounds name (default STATE-DIR/hitlists)")
	fs.StringVar(&cfg.OptOut, "opt-out", "", "file of addresses/prefixes never probed (re-read every round)")
	fs.IntVar(&cfg.MaxPPS, "max-pps", census.DefaultPPS, fmt.Sprintf("this site's send-rate ceiling in echo requests per second (hard limit %d)", census.HardMaxPPS))
	fs.StringVar(&cfg.Note, "note", "", "contact note appended to every probe's payload (e.g. a URL or abuse address)")
	fs.StringVar(&cfg.Netns, "netns", "", "open the raw ICMP sockets in this network namespace (/run/netns/NAME)")
	fs.DurationVar(&cfg.UploadEvery, "upload-every", 0, "pause between uploads of spooled replies (default 2s)")
	verbose := fs.Bool("v", false, "debug logging")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: anycatch-site --collector URL [--enroll-token TOKEN] [flags]\n\nThe census agent of an anycast site (docs/census.md). Flags (also ANYCATCH_<FLAG> env vars):")
		fs.PrintDefaults()
	}
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected arguments %q", pos)
	}
	// Environment fills what the command line did not set.
	if err := (cliflag.Env{}).Apply(fs, os.Getenv); err != nil {
		return err
	}
	if cfg.Collector == "" {
		fs.Usage()
		return errors.New("--collector is required")
	}
	if cfg.MaxPPS <= 0 || cfg.MaxPPS > census.HardMaxPPS {
		return fmt.Errorf("--max-pps %d: must be 1-%d", cfg.MaxPPS, census.HardMaxPPS)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	site.Version = version
	return site.Run(ctx, cfg)
}

var version = "dev"
