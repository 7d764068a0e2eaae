package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/internal/cliflag"
	"github.com/anycatch/anycatch/store"
)

// cmdSeed fills a database with synthetic data for load tests, then
// optionally benchmarks the API's catchment and latency queries:
//
//	anycatch-server seed --probes 10000 --targets 20 --days 30 --interval 6h [--bench 50] [--bench-cpuprofile cpu.out]
func cmdSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbf := dbFlags{create: true} // seed fills a new database: a development tool, not an admin command
	dbf.register(fs)
	var o store.SeedOptions
	fs.IntVar(&o.Probes, "probes", 10000, "probes to create")
	fs.IntVar(&o.Targets, "targets", 20, "targets to create, each with 8 sites")
	fs.IntVar(&o.Days, "days", 30, "days of history (catchment changes and rollups)")
	fs.DurationVar(&o.Interval, "interval", 6*time.Hour, "one identity result per probe and target per interval (must divide 24h)")
	fs.IntVar(&o.RawDays, "raw-days", 1, "days (ending now) that also get raw result rows")
	skip := fs.Bool("skip-seed", false, "do not seed; only benchmark an already seeded database")
	bench := fs.Int("bench", 0, "after seeding, run each benchmark query this many times and print p50/p95/max")
	cpuProfile := fs.String("bench-cpuprofile", "", "write a CPU profile of the API handler benchmarks to this file (go tool pprof)")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := cliflag.Exactly("seed", pos, 0, ""); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	db, err := openDatabase(ctx, dbf, store.Options{StatementTimeout: -1}, log)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer db.close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if !*skip {
		t0 := time.Now()
		var total int64
		o.Progress = func(step string, rows int64, took time.Duration) {
			total += rows
			fmt.Fprintf(stdout, "%-34s %11d rows  %8s\n", step, rows, took.Round(time.Millisecond))
		}
		if err := db.Seed(ctx, o); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "seeded %d rows in %s\n", total, time.Since(t0).Round(time.Second))
	}
	if *bench > 0 {
		// The handlers run as under serve, with its garbage collector target.
		fmt.Fprintf(stdout, "GOGC %d\n", tuneGC())
		return runBench(ctx, db.DB, *bench, *cpuProfile, stdout)
	}
	return nil
}

// runBench times the catchment and latency queries against the store and
// through the API handler (in process, no network) for every seeded target
// in turn.
func runBench(ctx context.Context, db *store.DB, n int, cpuProfile string, w io.Writer) error {
	st := pgstore.New(db)
	ts, err := st.ListTargets(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range ts {
		if len(t.Name) > 6 && t.Name[:6] == "seed-t" {
			names = append(names, t.Name)
		}
	}
	if len(names) == 0 {
		return errors.New("bench: no seeded targets (seed-tNN)")
	}
	_, secret, err := api.CreateKey(ctx, st, "bench", api.ScopeRead, ptr(1_000_000))
	if err != nil {
		return err
	}
	h := api.New(api.Config{Store: st})
	// The "cached" cases go through a server with the report cache on
	// (5 s): the warm-up pass fills it, so they measure hits (or 304s
	// for the If-None-Match case); every other case is cold.
	hc := api.New(api.Config{Store: st, ReportCacheTTL: 5 * time.Second})
	// "api cache miss" cases: a 1 ns TTL, so every request renders and
	// fills the cache (the cost the cache adds to a cold request).
	hm := api.New(api.Config{Store: st, ReportCacheTTL: time.Nanosecond})
	now := time.Now().UTC()
	// gzip marks cases requested with Accept-Encoding: gzip, as browsers do.
	cases := []struct {
		name, path     string
		gzip           bool
		cached, ifNone bool
	}{
		{"api: catchment now (JSON, all probes)", "/catchment", false, false, false},
		{"api: catchment now, gzip", "/catchment", true, false, false},
		{"api: catchment now ?probes=false", "/catchment?probes=false", false, false, false},
		{"api: catchment now ?format=csv", "/catchment?format=csv", false, false, false},
		{"api: catchment.geojson now, gzip", "/catchment.geojson", true, false, false},
		{"api: catchment 7 days ago", "/catchment?window=18h&at=" + now.Add(-7*24*time.Hour).Format(time.RFC3339), false, false, false},
		{"api: catchment 7 days ago, gzip", "/catchment?window=18h&at=" + now.Add(-7*24*time.Hour).Format(time.RFC3339), true, false, false},
		{"api: latency last 24h", "/latency", false, false, false},
		{"api: latency 7 days (day-aligned)", "/latency?from=" + now.Truncate(24*time.Hour).Add(-7*24*time.Hour).Format(time.RFC3339) + "&to=" + now.Truncate(24*time.Hour).Format(time.RFC3339), false, false, false},
		{"api: latency 30 days", "/latency?from=" + now.Add(-30*24*time.Hour).Format(time.RFC3339), false, false, false},
		{"api: latency 30 days, group=asn, gzip", "/latency?group=asn&from=" + now.Add(-30*24*time.Hour).Format(time.RFC3339), true, false, false},
		{"api: changes last 24h (page of 100)", "/changes", false, false, false},
		{"api: changes newest first, moves only", "/changes?order=desc&moves_only=true", false, false, false},
		{"api: changes/times 30 days", "/changes/times?from=" + now.Add(-30*24*time.Hour).Format(time.RFC3339), false, false, false},
		{"api cache miss: catchment now (JSON)", "/catchment", false, false, false},
		{"api cached: catchment now (JSON)", "/catchment", false, true, false},
		{"api cached: catchment now, gzip", "/catchment", true, true, false},
		{"api cached: catchment now, 304", "/catchment", true, true, true},
		{"api cached: catchment 7 days ago", "/catchment?window=18h&at=" + now.Add(-7*24*time.Hour).Format(time.RFC3339), false, true, false},
		{"api cached: latency 30 days", "/latency?from=" + now.Add(-30*24*time.Hour).Format(time.RFC3339), false, true, false},
	}
	// Store queries alone (SQL and scanning, no aggregation or JSON).
	ids := map[string]int{}
	for _, t := range ts {
		ids[t.Name] = t.ID
	}
	day := 24 * time.Hour
	storeCases := []struct {
		name string
		run  func(id int) error
	}{
		{"store: catchment now", func(id int) error {
			_, err := st.Catchment(ctx, api.CatchmentQuery{TargetID: id, At: now, Window: 18 * time.Hour})
			return err
		}},
		{"store: catchment 7 days ago", func(id int) error {
			_, err := st.Catchment(ctx, api.CatchmentQuery{TargetID: id, At: now.Add(-7 * day), Window: 18 * time.Hour, Historical: true})
			return err
		}},
		{"store: latency last 24h", func(id int) error {
			_, err := st.Latency(ctx, api.LatencyQuery{TargetID: id, From: now.Add(-day), To: now, Kind: "identity"})
			return err
		}},
		{"store: latency 7 days (day-aligned)", func(id int) error {
			_, err := st.Latency(ctx, api.LatencyQuery{TargetID: id, From: now.Truncate(day).Add(-7 * day), To: now.Truncate(day), Kind: "identity"})
			return err
		}},
		{"store: latency 30 days", func(id int) error {
			_, err := st.Latency(ctx, api.LatencyQuery{TargetID: id, From: now.Add(-30 * day), To: now, Kind: "identity"})
			return err
		}},
	}
	fmt.Fprintf(w, "\n%-40s %5s %9s %9s %9s\n", "query", "n", "p50", "p95", "max")
	for _, c := range storeCases {
		for _, name := range names { // warm-up: one pass over every target
			if err := c.run(ids[name]); err != nil {
				return fmt.Errorf("bench %s: %w", c.name, err)
			}
		}
		var d []time.Duration
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if err := c.run(ids[names[i%len(names)]]); err != nil {
				return fmt.Errorf("bench %s: %w", c.name, err)
			}
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		fmt.Fprintf(w, "%-40s %5d %9s %9s %9s\n", c.name, n, ms(d[len(d)/2]), ms(d[len(d)*95/100]), ms(d[len(d)-1]))
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// The api cases go through real HTTP servers on loopback: a request
	// is timed from sending it to reading the last byte of the body.
	servers := map[http.Handler]*httptest.Server{}
	for _, hh := range []http.Handler{h, hc, hm} {
		servers[hh] = httptest.NewServer(hh)
		defer servers[hh].Close()
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}}
	for _, c := range cases {
		var d []time.Duration
		handler, etags := h, map[string]string{}
		if c.cached {
			handler = hc
		} else if strings.HasPrefix(c.name, "api cache miss:") {
			handler = hm
		}
		base := servers[handler].URL
		for i := -len(names); i < n; i++ { // the first pass over every target warms up
			path := "/api/v1/targets/" + names[(i+len(names))%len(names)] + c.path
			req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+secret)
			if c.gzip {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			want := http.StatusOK
			if c.ifNone && i >= 0 {
				req.Header.Set("If-None-Match", etags[path])
				want = http.StatusNotModified
			}
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("bench %s: %w", path, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("bench %s: %w", path, err)
			}
			if i >= 0 {
				d = append(d, time.Since(t0))
			}
			etags[path] = resp.Header.Get("ETag")
			if c.cached && i >= 0 && resp.Header.Get("X-Anycatch-Cache") != "hit" {
				return fmt.Errorf("bench %s: not a cache hit", path)
			}
			if resp.StatusCode != want {
				return fmt.Errorf("bench %s: %d %s", path, resp.StatusCode, body)
			}
		}
		slices.Sort(d)
		fmt.Fprintf(w, "%-40s %5d %9s %9s %9s\n", c.name, n, ms(d[len(d)/2]), ms(d[len(d)*95/100]), ms(d[len(d)-1]))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func ptr[T any](v T) *T { return &v }
