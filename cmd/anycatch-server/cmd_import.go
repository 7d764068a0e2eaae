package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/anycatch/anycatch/atlas/importer"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/internal/cliflag"
	"github.com/anycatch/anycatch/store"
)

// cmdImport imports results of other platforms:
//
//	anycatch-server import atlas --target NAME [flags] FILE...
func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(stderr, "usage: anycatch-server import atlas --target NAME [flags] FILE...")
		fmt.Fprintln(stderr, "\nRun 'anycatch-server import atlas -h' for the flags.")
		if len(args) == 0 {
			return errors.New("import: missing source (atlas)")
		}
		return flag.ErrHelp
	}
	if strings.HasPrefix(args[0], "-") {
		// Flags first would otherwise be taken for the source name.
		rest := slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "atlas" })
		return fmt.Errorf("import: name the source before the flags: import atlas %s", strings.Join(rest, " "))
	}
	if args[0] != "atlas" {
		return fmt.Errorf("import: unknown source %q (want atlas)", args[0])
	}
	return importAtlas(ctx, args[1:], stdout, stderr)
}

func importAtlas(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import atlas", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbf dbFlags
	dbf.register(fs)
	var lf logFlags
	lf.register(fs)
	var (
		target   = fs.String("target", "", "target receiving the results (required)")
		rules    = fs.String("site-rules", "", `identity -> site rules file, or "builtin" for the embedded one; empty uses the target's rules`)
		service  = fs.String("service", "", "service of the rules file (default: the one named like the target, or the only one)")
		create   = fs.Bool("create-target", false, "create the target (disabled) if it does not exist")
		addrs    = fs.String("addr", "", "comma-separated addresses of a created target (default: the service's addresses)")
		cityDB   = fs.String("geoip-city", "", "GeoIP2/GeoLite2/DB-IP city or country database, to locate probes")
		asnDB    = fs.String("geoip-asn", "", "GeoIP2/GeoLite2/DB-IP ASN database")
		batch    = fs.Int("batch", importer.DefaultBatchSize, "results per database transaction")
		strict   = fs.Bool("strict", false, "stop at the first bad record (non-zero exit)")
		partial  = fs.Bool("partial", false, "accept a file that ends early (truncated download, broken array): exit 0 with what was read")
		progress = fs.Bool("progress", true, "report progress on stderr every second")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: anycatch-server import atlas --target NAME [flags] FILE...")
		fmt.Fprintln(stderr, `
Imports RIPE Atlas results (dns, ping, traceroute; JSON array or NDJSON;
gzip recognised; "-" is stdin) as results of the target, from external
probes "atlas:<prb_id>" (measurement "atlas:<msm_id>"). Importing a file
again stores nothing new. Bad records are reported with their line or
element number and skipped; the exit status is non-zero only when a file
cannot be opened, ends early (truncated; unless --partial) or yields no
result at all, the database fails, or --strict meets a bad record. See
docs/atlas.md.`)
		fs.PrintDefaults()
	}
	files, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if *target == "" {
		fs.Usage()
		return errors.New("import atlas: --target is required")
	}
	if len(files) == 0 {
		fs.Usage()
		return errors.New("import atlas: no files")
	}
	if *batch < 1 || *batch > 50000 {
		return fmt.Errorf("import atlas: --batch %d out of range 1..50000", *batch)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return fmt.Errorf("import atlas: %w", err)
	}
	resolver, err := geo.Open(*cityDB, *asnDB)
	if err != nil {
		return fmt.Errorf("import atlas: %w", err)
	}
	defer resolver.Close()

	db, err := openDatabase(ctx, dbf, store.Options{MaxConns: 2}, log)
	if err != nil {
		return fmt.Errorf("import atlas: %w", err)
	}
	defer db.close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("import atlas: %w", err)
	}
	var addrList []string
	if *addrs != "" {
		addrList = strings.Split(*addrs, ",")
	}
	prep, err := importer.PrepareTarget(ctx, db.DB, importer.TargetOptions{
		Name: *target, Create: *create, Addrs: addrList, RulesFile: *rules, Service: *service,
	})
	if err != nil {
		return fmt.Errorf("import atlas: %w", err)
	}
	for _, n := range prep.Notes {
		fmt.Fprintln(stderr, "import atlas:", n)
	}
	opts := importer.Options{
		Store: db.DB, Target: *prep.Target, Identifier: prep.Identifier, Locate: resolver.Lookup,
		BatchSize: *batch, Strict: *strict, Partial: *partial, Errors: stderr,
	}
	if *progress {
		opts.Progress = stderr
	}
	return importFiles(ctx, opts, files, stdout)
}

// importFiles imports each file in turn and prints one summary per file
// and a total. It goes on after a file that cannot be read and fails at
// the end; a store failure, cancellation or strict failure stops at once.
func importFiles(ctx context.Context, opts importer.Options, files []string, stdout io.Writer) error {
	var total importer.Stats
	var failed []string
	start := time.Now()
	for _, f := range files {
		st, err := importer.ImportFile(ctx, opts, f)
		if !errors.Is(err, importer.ErrUnreadable) {
			fmt.Fprintln(stdout, st.Summary())
		}
		total.Records += st.Records
		total.Results += st.Results
		total.New += st.New
		total.Duplicate += st.Duplicate
		total.Bad += st.Bad
		total.NewProbes += st.NewProbes
		if err != nil {
			if errors.Is(err, importer.ErrUnreadable) || errors.Is(err, importer.ErrIncomplete) {
				failed = append(failed, fmt.Sprintf("%s: %v", f, err))
				continue
			}
			return err
		}
		if st.Results == 0 {
			failed = append(failed, fmt.Sprintf("%s: no result could be read", f))
		}
	}
	total.Elapsed = time.Since(start)
	if len(files) > 1 {
		fmt.Fprintf(stdout, "total: %d records, %d results: %d new, %d duplicate; %d bad records; %d new probes; %.1f s, %.0f results/s\n",
			total.Records, total.Results, total.New, total.Duplicate, total.Bad, total.NewProbes, total.Elapsed.Seconds(), total.Rate())
	}
	if len(failed) > 0 {
		return fmt.Errorf("import atlas: %s", strings.Join(failed, "; "))
	}
	return nil
}
