package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/anycatch/anycatch/internal/cliflag"
	"github.com/anycatch/anycatch/store"
)

// cmdRollup rebuilds the result rollups (hourly/daily rows and rollup
// blocks) over a range, for hours the periodic job did not see (the API
// role was down, results were imported or re-identified):
//
//	anycatch-server rollup --since 72h [--until RFC3339] [--blocks-only]
func cmdRollup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rollup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: anycatch-server rollup --since 72h|RFC3339 [--until RFC3339] [--blocks-only] [db flags]

Rebuilds the rollups that latency reports and earlier catchments read, for
every target, over [since, until). The running server rebuilds the last 3
hours every 5 minutes; run this after downtime of the API role, or over a
range whose results were imported or re-identified. By default the hourly
and daily rollups and the blocks are recomputed from raw results (hours
older than the oldest raw results, which retention dropped, keep their
rollups); --blocks-only rebuilds only the rollup blocks, from the hourly
rollups as they stand.`)
		fs.PrintDefaults()
	}
	var dbf dbFlags
	dbf.register(fs)
	sinceS := fs.String("since", "", "start: an RFC 3339 time or a duration ago (e.g. 72h); required")
	untilS := fs.String("until", "", "end: an RFC 3339 time or a duration ago; default now")
	blocksOnly := fs.Bool("blocks-only", false, "rebuild only the rollup blocks, from the hourly rollups")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if *sinceS == "" || len(pos) != 0 {
		return errors.New("rollup: --since is required and takes no arguments")
	}
	now := time.Now()
	since, err := timeFlag("since", *sinceS, now)
	if err != nil {
		return fmt.Errorf("rollup: %w", err)
	}
	until := now
	if *untilS != "" {
		if until, err = timeFlag("until", *untilS, now); err != nil {
			return fmt.Errorf("rollup: %w", err)
		}
	}
	if !since.Before(until) {
		return fmt.Errorf("rollup: --since %s is not before --until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	d, err := openDatabase(ctx, dbf, store.Options{StatementTimeout: -1}, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("rollup: %w", err)
	}
	defer d.close()
	t0 := time.Now()
	if *blocksOnly {
		n, err := d.DB.RebuildBlocks(ctx, since, until)
		if err != nil {
			return fmt.Errorf("rollup: %w", err)
		}
		fmt.Fprintf(stdout, "rebuilt %d rollup blocks over %s .. %s in %s\n", n,
			since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), time.Since(t0).Round(time.Millisecond))
		return nil
	}
	if err := d.DB.RollupResults(ctx, since, until); err != nil {
		return fmt.Errorf("rollup: %w", err)
	}
	fmt.Fprintf(stdout, "rebuilt the rollups over %s .. %s in %s\n",
		since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), time.Since(t0).Round(time.Millisecond))
	return nil
}

// timeFlag parses an RFC 3339 time or a duration before now.
func timeFlag(name, v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q is neither a duration (72h) nor an RFC 3339 time", name, v)
}
