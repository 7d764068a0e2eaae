package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/internal/cliflag"
	"github.com/anycatch/anycatch/store"
)

// cmdReidentify re-applies a target's current rules to its stored
// dns/identity results and rebuilds its catchment state:
//
//	anycatch-server reidentify --target NAME [--since 2026-11-01T00:00:00Z | --since 72h]
func cmdReidentify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reidentify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbf dbFlags
	dbf.register(fs)
	name := fs.String("target", "", "target name (required)")
	sinceS := fs.String("since", "", "re-identify results from this RFC 3339 time or this long ago (e.g. 72h); default all")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if *name == "" || len(pos) != 0 {
		return errors.New("reidentify: --target is required and takes no arguments")
	}
	var since time.Time
	if *sinceS != "" {
		var err error
		if since, err = timeFlag("since", *sinceS, time.Now()); err != nil {
			return fmt.Errorf("reidentify: %w", err)
		}
	}
	d, err := openDatabase(ctx, dbf, store.Options{StatementTimeout: -1}, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("reidentify: %w", err)
	}
	defer d.close()
	db := d.DB
	t, err := db.GetTarget(ctx, *name)
	if err != nil {
		return fmt.Errorf("reidentify: %w", err)
	}
	rules, err := db.ListRules(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("reidentify: %w", err)
	}
	idf, err := catchment.NewIdentifier(t.IdentityOrder, rules)
	if err != nil {
		return fmt.Errorf("reidentify: rules of %s: %w", t.Name, err)
	}
	st, err := db.Reidentify(ctx, t.ID, since, idf)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d dns/identity results read, %d re-identified, catchment rebuilt with %d change events\n",
		t.Name, st.Results, st.Updated, st.Changes)
	if st.Updated > 0 {
		// Latency reports and earlier catchments read the rollups: rebuild
		// them over the results whose site changed.
		if err := db.RollupResults(ctx, st.First, st.Last.Add(time.Second)); err != nil {
			return fmt.Errorf("reidentify: rollups: %w", err)
		}
		fmt.Fprintf(stdout, "%s: rollups rebuilt over %s .. %s\n", t.Name,
			st.First.UTC().Format(time.RFC3339), st.Last.UTC().Format(time.RFC3339))
	}
	return nil
}
