package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/internal/cliflag"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/store"
)

// cmdToken manages enrollment tokens:
//
//	anycatch-server token create [--name N] [--uses N] [--expires 24h]
//	anycatch-server token list
//	anycatch-server token revoke ID
//
// The database comes from --database-url/$DATABASE_URL, or the embedded
// cluster in --data-dir (attached to when a server is running on it).
func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: anycatch-server token create [--name NAME] [--uses N] [--expires DURATION] | list | revoke ID")
	}
	if len(args) == 0 {
		usage()
		return errors.New("token: missing subcommand")
	}
	if !slices.Contains([]string{"create", "list", "revoke"}, args[0]) {
		usage()
		return fmt.Errorf("token: unknown subcommand %q", args[0])
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbf dbFlags
	dbf.register(fs)
	// Only create has flags of its own: list and revoke refuse them.
	create := fs
	if args[0] != "create" {
		create = flag.NewFlagSet("", flag.ContinueOnError)
	}
	name := create.String("name", "", "free-text label")
	uses := create.Int("uses", 1, "enrollments allowed; 0 = unlimited")
	expires := create.Duration("expires", 24*time.Hour, "lifetime; 0 = never")
	pos, err := cliflag.Parse(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return fmt.Errorf("token %s: %w", args[0], err)
	}
	// Check the arguments before opening the database: never act on a
	// command line that is not fully understood.
	want, what := 0, ""
	if args[0] == "revoke" {
		want, what = 1, "one token ID"
	}
	if err := cliflag.Exactly("token "+args[0], pos, want, what); err != nil {
		return err
	}
	d, err := openDatabase(ctx, dbf, store.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer d.close()
	db := d.DB
	tokens := collector.Tokens{Store: pgstore.New(db)}
	switch args[0] {
	case "create":
		t, secret, err := tokens.Create(ctx, collector.TokenOptions{Name: *name, MaxUses: *uses, TTL: *expires})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %d created (%s). It is shown only now:\n\n  %s\n\n", t.ID, describe(t), secret)
		return nil
	case "list":
		ts, err := tokens.List(ctx)
		if err != nil {
			return err
		}
		writeTokens(stdout, ts, time.Now())
		return nil
	case "revoke":
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil {
			return fmt.Errorf("token revoke: bad ID %q", pos[0])
		}
		if err := tokens.Revoke(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %d revoked\n", id)
		return nil
	}
	usage()
	return fmt.Errorf("token: unknown subcommand %q", args[0])
}

func describe(t collector.Token) string {
	uses := "unlimited uses"
	if t.MaxUses > 0 {
		uses = fmt.Sprintf("%d use(s)", t.MaxUses)
	}
	exp := "never expires"
	if t.ExpiresAt != nil {
		exp = "expires " + t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return uses + ", " + exp
}

// writeTokens renders the token table; now decides the status column.
func writeTokens(w io.Writer, ts []collector.Token, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tUSES\tEXPIRES\tSTATUS\tCREATED")
	for _, t := range ts {
		uses := strconv.Itoa(t.Uses) + "/∞"
		if t.MaxUses > 0 {
			uses = fmt.Sprintf("%d/%d", t.Uses, t.MaxUses)
		}
		exp := "never"
		if t.ExpiresAt != nil {
			exp = t.ExpiresAt.UTC().Format(time.RFC3339)
		}
		status := "usable"
		switch {
		case t.RevokedAt != nil:
			status = "revoked"
		case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
			status = "expired"
		case t.MaxUses > 0 && t.Uses >= t.MaxUses:
			status = "used up"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, uses, exp, status, t.CreatedAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
}
