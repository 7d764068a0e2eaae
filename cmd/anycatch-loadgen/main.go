// Command anycatch-loadgen drives a collector with simulated probes: it
// enrolls N probes, fetches their schedules and uploads signed, gzipped
// NDJSON batches of realistic identity and ping results at a target rate
// for a bounded time, then reports sustained results/s, upload latency
// percentiles and errors. With --copy-baseline it also measures the raw
// COPY rate of the same rows into the same results table in the same run:
// the physical limit the collector is compared with.
//
// Upload bodies (gzipped NDJSON) are built before the clock starts, so
// the generator's own JSON and gzip work does not compete with the
// collector for the machine's cores; requests are signed when sent.
//
// Self-contained run (throwaway PostgreSQL, durable, with the settings of
// anycatch-server's embedded cluster; in-process collector on loopback):
//
//	anycatch-loadgen --pg-tmp --probes 40 --rate 60000 --duration 20s --copy-baseline
//
// Against a running server: with --db (its database) the generator creates
// the "loadgen" target and an enrollment token itself, waits for the
// server to list the target, and can measure the COPY baseline and, with
// --pg-data and --server-pid, the CPU the server and PostgreSQL used:
//
//	anycatch-loadgen --url http://127.0.0.1:18080 \
//		--db 'postgres:///anycatch?host=/tmp/lgsrv/postgres&user=postgres' \
//		--pg-data /tmp/lgsrv/postgres --server-pid $(pgrep -f '^anycatch-server serve') \
//		--rate 60000 --duration 20s --copy-baseline
//
// Every run is bounded: --duration (at most 10m) plus 30 s for uploads in
// flight, and --max-uploads.
//
// With --live N it measures the live channel instead (see live.go):
//
//	anycatch-loadgen --url http://127.0.0.1:18080 --db '…' --server-pid PID --live 10000 --live-idle 60s
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/internal/pgcluster"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "anycatch-loadgen:", err)
		os.Exit(1)
	}
}

type options struct {
	url, token, db string
	pgTmp          bool
	probes, rate   int
	batch          int
	duration       time.Duration
	copyBaseline   bool
	maxUploads     int
	pgUnsafe       bool
	pgStats        bool
	cpuProfile     string
	pgData         string
	serverPID      int
	live           int           // hold this many live channels instead of uploading (live.go)
	liveIdle       time.Duration // how long to hold them idle
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("anycatch-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "url", "", "collector base URL; empty: serve an in-process collector on 127.0.0.1 (needs --db or --pg-tmp)")
	fs.StringVar(&o.token, "token", "", "enrollment token for --url; without it, --db creates the loadgen target and a token")
	fs.StringVar(&o.db, "db", "", "PostgreSQL URL: the in-process collector's database, or the --url server's (for setup and --copy-baseline)")
	fs.BoolVar(&o.pgTmp, "pg-tmp", false, "start a throwaway PostgreSQL cluster (durable, settings as anycatch-server's embedded cluster) and use it")
	fs.BoolVar(&o.pgUnsafe, "pg-unsafe", false, "with --pg-tmp: turn off fsync, synchronous_commit and full_page_writes")
	fs.BoolVar(&o.pgStats, "pg-stats", false, "with --pg-tmp: load pg_stat_statements and print the statements that took the most time")
	fs.StringVar(&o.pgData, "pg-data", "", "data directory of the PostgreSQL cluster behind --db, to report its CPU use")
	fs.IntVar(&o.serverPID, "server-pid", 0, "process id of the server behind --url, to report its CPU use")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the load phase (generator and in-process collector) to this file")
	fs.IntVar(&o.probes, "probes", 40, "simulated probes")
	fs.IntVar(&o.rate, "rate", 50000, "target results per second, all probes together")
	fs.IntVar(&o.batch, "batch", 500, "results per upload")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long to upload (at most 10m)")
	fs.BoolVar(&o.copyBaseline, "copy-baseline", false, "also measure raw COPY of the same rows into results")
	fs.IntVar(&o.maxUploads, "max-uploads", 20_000, "stop after this many uploads (they are built in memory first)")
	fs.IntVar(&o.live, "live", 0, "instead of uploading: enroll this many probes, hold as many live channels (at most 20000) and report the server's memory per connection and idle CPU (needs --url; --server-pid for RSS and CPU)")
	fs.DurationVar(&o.liveIdle, "live-idle", 30*time.Second, "with --live: how long to hold the connections idle (at most 10m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		return errors.New("--duration must be in (0, 10m]")
	}
	if o.probes < 1 || o.rate < 1 || o.batch < 1 || o.batch > 10000 || o.maxUploads < 1 || o.maxUploads > 100_000 {
		return errors.New("--probes, --rate must be positive, --batch in 1..10000 and --max-uploads in 1..100000")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	meter := cpuMeter{pgData: o.pgData, serverPID: o.serverPID}
	if o.pgTmp {
		dir, err := os.MkdirTemp("", "anycatch-loadgen-pg-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		// The embedded cluster's settings, as anycatch-server runs it.
		settings := map[string]string{}
		if o.pgStats {
			settings["shared_preload_libraries"] = "pg_stat_statements"
		}
		c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "data"), Unsafe: o.pgUnsafe,
			Settings: settings, Logger: log})
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		defer c.Close()
		o.db = c.URL("postgres")
		meter.pgData = c.DataDir()
		durability := "durable (fsync, synchronous_commit, full_page_writes on)"
		if o.pgUnsafe {
			durability = "UNSAFE (fsync, synchronous_commit, full_page_writes off)"
		}
		fmt.Fprintf(stdout, "postgres: throwaway cluster, %s, %v\n", durability, settings)
	}
	var db *store.DB
	if o.db != "" {
		var err error
		db, err = store.Open(ctx, o.db, store.Options{Logger: log})
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		if o.pgStats {
			if _, err := db.Pool().Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
				return err
			}
		}
	}
	if o.url == "" {
		if db == nil {
			return errors.New("need --url, --db or --pg-tmp")
		}
		url, token, stopServer, err := serveInProcess(ctx, db, log)
		if err != nil {
			return err
		}
		defer stopServer()
		o.url, o.token = url, token
	} else if o.token == "" && db != nil {
		// A running server on this database: it picks the target up at
		// its next reload (enroll waits for the schedule to list it).
		token, err := prepare(ctx, db)
		if err != nil {
			return err
		}
		o.token = token
	}
	if o.token == "" {
		return errors.New("--token (or --db) is required with --url")
	}
	if o.live > 0 {
		return liveLoad(ctx, o, meter, db, stdout)
	}
	if o.copyBaseline && db == nil {
		return errors.New("--copy-baseline needs --db or --pg-tmp")
	}
	rep, sample, err := load(ctx, o, meter)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep)
	if o.pgStats {
		if err := printStatements(ctx, db, stdout); err != nil {
			return err
		}
	}
	if o.copyBaseline {
		n := min(max(rep.accepted, 100_000), 300_000)
		rate, cpuPG, err := copyBaseline(ctx, db, sample, n, meter)
		if err != nil {
			return fmt.Errorf("copy baseline: %w", err)
		}
		fmt.Fprintf(stdout, "raw COPY baseline: %d rows at %.0f rows/s; collector reached %.0f%% of it\n", n, rate, 100*rep.rate/rate)
		if cpuPG > 0 && rep.cpuPG > 0 {
			copyUS := float64(cpuPG.Microseconds()) / float64(n)
			ingestUS := float64(rep.cpuPG.Microseconds()) / float64(max(rep.accepted, 1))
			fmt.Fprintf(stdout, "postgres cpu per row: raw COPY %.1f µs, collector ingest %.1f µs (%.0f%%)\n", copyUS, ingestUS, 100*ingestUS/copyUS)
		}
	}
	return nil
}

// prepare creates (or reuses) the "loadgen" target with an identity and a
// ping measurement and its site rule, and returns a new enrollment token.
func prepare(ctx context.Context, db *store.DB) (string, error) {
	tg := &store.Target{Name: "loadgen", Addr4: "198.18.53.53", Addr6: "2001:db8:53::53", IntervalSec: 60, Enabled: true,
		Specs: []measure.Spec{{Kind: measure.KindIdentity}, {Kind: measure.KindPing}}, IdentityOrder: catchment.DefaultIdentityOrder}
	if err := db.CreateTarget(ctx, tg); err != nil && !errors.Is(err, store.ErrConflict) {
		return "", err
	}
	if tg.ID != 0 {
		if err := db.ReplaceRules(ctx, tg.ID, loadgenRules); err != nil {
			return "", err
		}
	}
	_, token, err := collector.Tokens{Store: pgstore.New(db)}.Create(ctx, collector.TokenOptions{Name: "loadgen"})
	return token, err
}

// serveInProcess starts a collector over db on a loopback port with a
// "loadgen" target and returns its URL and an enrollment token.
func serveInProcess(ctx context.Context, db *store.DB, log *slog.Logger) (string, string, func(), error) {
	token, err := prepare(ctx, db)
	if err != nil {
		return "", "", nil, err
	}
	st := pgstore.New(db)
	c, err := collector.New(collector.Config{Store: st, Logger: log, Limits: collector.Limits{PerAddr: -1, Per64: -1, PerPrefix: -1}})
	if err != nil {
		return "", "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.Run(runCtx) }()
	go func() { defer wg.Done(); srv.Serve(ln) }()
	stop := func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		srv.Shutdown(sctx)
		scancel()
		cancel()
		wg.Wait()
	}
	return "http://" + ln.Addr().String(), token, stop, nil
}

type report struct {
	probes, offered         int
	uploads, errors         int
	firstErr                error
	cpuSelf, cpuServer      time.Duration // CPU used while uploading: this process (generator, in-process collector), --server-pid
	cpuPG                   time.Duration // and PostgreSQL
	accepted, dup, rejected int
	byStatus                map[int]int
	elapsed                 time.Duration
	rate                    float64
	p50, p99, max           time.Duration
}

func (r report) String() string {
	s := fmt.Sprintf("probes %d, offered %d results/s, uploads %d (errors %d, statuses %v)\nresults accepted %d, duplicate %d, rejected %d in %s\nsustained %.0f results/s; upload latency p50 %s p99 %s max %s",
		r.probes, r.offered, r.uploads, r.errors, r.byStatus, r.accepted, r.dup, r.rejected, r.elapsed.Round(time.Millisecond),
		r.rate, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.max.Round(time.Microsecond))
	if r.cpuServer > 0 {
		s += fmt.Sprintf("\ncpu: loadgen %.1fs, server %.1fs, postgres %.1fs (server+postgres: %.0f results per cpu-second); 1-min load average at end %s",
			r.cpuSelf.Seconds(), r.cpuServer.Seconds(), r.cpuPG.Seconds(), float64(r.accepted)/(r.cpuServer+r.cpuPG).Seconds(), loadAvg())
	} else if cpu := r.cpuSelf + r.cpuPG; cpu > 0 {
		s += fmt.Sprintf("\ncpu: loadgen+collector %.1fs, postgres %.1fs (%.0f results per cpu-second); 1-min load average at end %s",
			r.cpuSelf.Seconds(), r.cpuPG.Seconds(), float64(r.accepted)/cpu.Seconds(), loadAvg())
	}
	if r.firstErr != nil {
		s += fmt.Sprintf("\nfirst error: %v", r.firstErr)
	}
	return s
}

type simProbe struct {
	id   string
	key  ed25519.PrivateKey
	msms []measure.Measurement
}

// load enrolls the probes, builds every upload body, then uploads them on
// schedule: each probe sends one batch every interval (at once when behind,
// never two at a time, as a real probe does) and starts none after the
// duration; uploads still in flight then get 30 s to finish.
func load(ctx context.Context, o options, meter cpuMeter) (report, []sampled, error) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.probes + 4}}
	defer client.CloseIdleConnections()
	probes := make([]*simProbe, o.probes)
	for i := range probes {
		p, err := enroll(ctx, client, o.url, o.token)
		if err != nil {
			return report{}, nil, fmt.Errorf("enroll probe %d: %w", i, err)
		}
		probes[i] = p
	}
	perProbe := float64(o.rate) / float64(o.probes) / float64(o.batch) // uploads/s per probe
	interval := time.Duration(float64(time.Second) / perProbe)
	uploadsPerProbe := min(int(o.duration/interval)+1, max(o.maxUploads/o.probes, 1))
	bodies := make([][][]byte, len(probes))
	var sample []sampled
	var buildErr error
	var bmu sync.Mutex
	var bwg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, p := range probes {
		bwg.Add(1)
		go func() { // owned by load: waited for below
			defer bwg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			bodies[i] = make([][]byte, uploadsPerProbe)
			for k := range bodies[i] {
				rs := makeBatch(p, o.batch, rng)
				body, err := gzipNDJSON(rs)
				bmu.Lock()
				if err != nil && buildErr == nil {
					buildErr = err
				}
				if k == 0 {
					for _, r := range rs {
						sample = append(sample, sampled{probe: p.id, r: r})
					}
				}
				bmu.Unlock()
				bodies[i][k] = body
			}
		}()
	}
	bwg.Wait()
	if buildErr != nil {
		return report{}, nil, fmt.Errorf("build uploads: %w", buildErr)
	}
	var (
		mu  sync.Mutex
		lat []time.Duration
		rep = report{probes: o.probes, byStatus: map[int]int{}, offered: o.rate}
	)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return report{}, nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return report{}, nil, err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := meter.read()
	start := time.Now()
	deadline := start.Add(o.duration)
	lctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() { // owned by load: waited for below
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 8))
			next := start.Add(time.Duration(rng.Int64N(int64(interval) + 1)))
			for _, body := range bodies[i] {
				if next.After(deadline) || time.Now().After(deadline) || lctx.Err() != nil {
					return
				}
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d):
					case <-lctx.Done():
						return
					}
				}
				next = next.Add(interval)
				t0 := time.Now()
				status, ur, err := upload(lctx, client, o.url, p, body)
				d := time.Since(t0)
				mu.Lock()
				rep.uploads++
				if err != nil {
					rep.errors++
					if rep.firstErr == nil {
						rep.firstErr = err
					}
				} else {
					rep.byStatus[status]++
					if status == http.StatusOK {
						lat = append(lat, d)
						rep.accepted += ur.Accepted
						rep.dup += ur.Duplicate
						rep.rejected += ur.Rejected
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.elapsed = time.Since(start)
	cpu1 := meter.read()
	rep.cpuSelf, rep.cpuServer, rep.cpuPG = cpu1.self-cpu0.self, cpu1.server-cpu0.server, cpu1.pg-cpu0.pg
	rep.rate = float64(rep.accepted) / rep.elapsed.Seconds()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		rep.p50, rep.p99, rep.max = lat[n/2], lat[min(n-1, n*99/100)], lat[n-1]
	}
	return rep, sample, nil
}

// sampled is one generated result and the probe it was uploaded as.
type sampled struct {
	probe string
	r     *measure.Result
}

// enrollKey enrolls a new simulated probe with a fresh key pair and
// returns its id and private key.
func enrollKey(ctx context.Context, client *http.Client, url, token, version string) (string, ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return "", nil, err
	}
	body, _ := json.Marshal(measure.EnrollRequest{Token: token, PublicKey: key.Public().(ed25519.PublicKey), Version: version})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+measure.PathEnroll, bytes.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var er measure.EnrollResponse
	if err := json.Unmarshal(b, &er); err != nil {
		return "", nil, err
	}
	return er.Probe, key, nil
}

func enroll(ctx context.Context, client *http.Client, url, token string) (*simProbe, error) {
	id, key, err := enrollKey(ctx, client, url, token, "loadgen")
	if err != nil {
		return nil, err
	}
	p := &simProbe{id: id, key: key}
	// A running server lists a target created meanwhile after its next
	// target reload (30 s by default).
	for wait := time.Now().Add(45 * time.Second); ; {
		status, sb, err := signed(ctx, client, url, p, http.MethodGet, measure.PathSchedule, nil, nil)
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("schedule: %d %v %s", status, err, sb)
		}
		var s measure.Schedule
		if err := json.Unmarshal(sb, &s); err != nil {
			return nil, err
		}
		for _, m := range s.Measurements {
			if m.Target == "loadgen" && (m.Spec.Kind == measure.KindIdentity || m.Spec.Kind == measure.KindPing) {
				p.msms = append(p.msms, m)
			}
		}
		if len(p.msms) > 0 {
			return p, nil
		}
		if time.Now().After(wait) {
			return nil, errors.New(`schedule has no identity or ping measurement of target "loadgen"`)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// loadgenRules map the generated identities to their sites.
var loadgenRules = []catchment.Rule{{Source: "hostname_bind", Match: "regex", Pattern: `^ns\d+\.(?P<site>[a-z]{3})\.example$`}}

var sites = []string{"ams", "fra", "lhr", "nrt", "iad", "gru"}

// makeBatch builds n realistic results for p's measurements.
func makeBatch(p *simProbe, n int, rng *rand.Rand) []*measure.Result {
	rs := make([]*measure.Result, n)
	now := time.Now().UTC()
	for i := range rs {
		m := p.msms[rng.IntN(len(p.msms))]
		af := 4
		if len(m.Address) > 0 && bytes.ContainsRune([]byte(m.Address), ':') {
			af = 6
		}
		ts := now.Add(-time.Duration(rng.IntN(60_000)) * time.Millisecond)
		r := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Measurement: m.ID, Kind: m.Spec.Kind, Time: ts, Dst: m.Address, AF: af}
		rtt := 5 + rng.Float64()*80
		switch m.Spec.Kind {
		case measure.KindIdentity:
			site := sites[rng.IntN(len(sites))]
			if rng.IntN(50) == 0 {
				site = "" // an unmapped answer now and then
			}
			host := "mystery-" + strconv.Itoa(rng.IntN(3))
			if site != "" {
				host = "ns" + strconv.Itoa(1+rng.IntN(4)) + "." + site + ".example"
			}
			r.DNS = &measure.DNSResult{Server: m.Address + ":53", Exchanges: []measure.DNSExchange{
				{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: rtt, Rcode: "NOERROR", Flags: []string{"qr", "aa"},
					Answers: []measure.RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: host}}},
				{QName: "id.server.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: rtt + 0.3, Rcode: "NOERROR", Flags: []string{"qr", "aa"},
					Answers: []measure.RR{{Name: "id.server.", Type: "TXT", Class: "CH", Data: host}}},
			}, Identity: &measure.Identity{HostnameBind: host, IDServer: host}}
		case measure.KindPing:
			recv := 3
			if rng.IntN(20) == 0 {
				recv = 2
			}
			r.Ping = &measure.PingResult{Mode: "dgram", Size: 56, Sent: 3, Received: recv, Min: &rtt, Avg: &rtt, Median: &rtt, Max: &rtt}
			for s := 0; s < recv; s++ {
				r.Ping.Replies = append(r.Ping.Replies, measure.PingReply{Seq: s, RTT: rtt + float64(s)/10, TTL: 57})
			}
		}
		rs[i] = r
	}
	return rs
}

// gzipNDJSON encodes rs as one gzipped NDJSON upload body.
func gzipNDJSON(rs []*measure.Result) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	enc := json.NewEncoder(zw)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func upload(ctx context.Context, client *http.Client, url string, p *simProbe, body []byte) (int, measure.UploadResponse, error) {
	status, b, err := signed(ctx, client, url, p, http.MethodPost, measure.PathResults, body, map[string]string{"Content-Encoding": "gzip"})
	var ur measure.UploadResponse
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(b, &ur)
	}
	return status, ur, err
}

func signed(ctx context.Context, client *http.Client, url string, p *simProbe, method, path string, body []byte, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	measure.SignRequest(req.Header, p.key, p.id, method, path, body, time.Now())
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

// copyBaseline COPYs n rows shaped like sample straight into results, in
// transactions of 5000 rows like the collector's batches, and returns
// rows/s: the same columns the collector stores (same probes, payloads,
// raw replies, RTT, loss, identity and site, classified by the same rule),
// fresh ids and times, no staging, no duplicate check, no catchment state.
// Rows are built and their payloads encoded before the clock starts, so
// this is the table's physical limit on this machine.
func copyBaseline(ctx context.Context, db *store.DB, sample []sampled, n int, meter cpuMeter) (rate float64, cpuPG time.Duration, err error) {
	if len(sample) == 0 {
		return 0, 0, errors.New("no sample rows")
	}
	var targetID int
	if err := db.Pool().QueryRow(ctx, `SELECT id FROM targets WHERE name = 'loadgen'`).Scan(&targetID); err != nil {
		return 0, 0, err
	}
	idf, err := catchment.NewIdentifier(catchment.DefaultIdentityOrder, loadgenRules)
	if err != nil {
		return 0, 0, err
	}
	cols := []string{"target_id", "ts", "id", "probe_id", "kind", "msm", "af", "dst", "rtt_ms", "loss", "identity", "site", "error", "payload", "raw"}
	text := func(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(1, 9))
	rows := make([][]any, n)
	for i := range rows {
		s := sample[i%len(sample)]
		r := *s.r
		r.Probe, r.Target = s.probe, "loadgen"
		r.Time = now.Add(-time.Duration(rng.IntN(60_000_000)) * time.Microsecond) // spread as makeBatch's
		r.ID = measure.NewUUIDv7(r.Time)
		payload, raw, err := store.EncodeResult(&r)
		if err != nil {
			return 0, 0, err
		}
		var rtt, loss pgtype.Float4
		if v, ok := r.RTT(); ok {
			rtt = pgtype.Float4{Float32: float32(v), Valid: true}
		}
		if r.Ping != nil && r.Ping.Sent > 0 {
			loss = pgtype.Float4{Float32: float32(1 - float64(r.Ping.Received)/float64(r.Ping.Sent)), Valid: true}
		}
		var identity, site string
		if r.Kind == measure.KindIdentity || r.Kind == measure.KindDNS {
			_, site, identity = collector.Classify(idf, &r)
		}
		rows[i] = []any{int32(targetID), r.Time, [16]byte(r.ID), r.Probe, string(r.Kind), r.Measurement, int16(r.AF),
			netip.MustParseAddr(r.Dst), rtt, loss, text(identity), text(site), text(r.Error), payload, raw}
	}
	pg0 := meter.read().pg
	start := time.Now()
	for done := 0; done < n; {
		k := min(5000, n-done)
		if _, err := db.Pool().CopyFrom(ctx, pgx.Identifier{"results"}, cols, pgx.CopyFromRows(rows[done:done+k])); err != nil {
			return 0, 0, err
		}
		done += k
	}
	rate = float64(n) / time.Since(start).Seconds()
	return rate, meter.read().pg - pg0, nil
}

// cpuMeter reads the CPU time used by this process and, when pgData is
// set, by the PostgreSQL cluster running on it (the postmaster and its
// children). On a machine shared with other work, results per CPU-second
// says what the collector and the database cost, whatever else runs.
type cpuMeter struct {
	pgData    string // data directory of the cluster to meter; "" for none
	serverPID int    // a server process to meter too; 0 for none
}

// cpuUse is CPU time used so far.
type cpuUse struct{ self, server, pg time.Duration }

func (m cpuMeter) read() cpuUse {
	var u cpuUse
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if m.serverPID > 0 {
		u.server = procCPU(m.serverPID)
	}
	if m.pgData == "" {
		return u
	}
	b, err := os.ReadFile(filepath.Join(m.pgData, "postmaster.pid"))
	if err != nil {
		return u
	}
	master, _ := strconv.Atoi(string(bytes.SplitN(b, []byte("\n"), 2)[0]))
	ents, _ := os.ReadDir("/proc")
	const ticks = 100 // USER_HZ on Linux
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesized command: state ppid ... utime(14) stime(15).
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(st[i+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(string(f[1]))
		if pid != master && ppid != master {
			continue
		}
		ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
		stt, _ := strconv.ParseInt(string(f[12]), 10, 64)
		u.pg += time.Duration(ut+stt) * time.Second / ticks
	}
	return u
}

// procCPU returns the CPU time process pid used (0 when unreadable).
func procCPU(pid int) time.Duration {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(st[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	stt, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return time.Duration(ut+stt) * time.Second / 100 // USER_HZ
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return string(bytes.Fields(b)[0])
}

// printStatements prints the statements that took the most time so far
// and resets the statistics.
func printStatements(ctx context.Context, db *store.DB, w io.Writer) error {
	rows, err := db.Pool().Query(ctx, `
		SELECT calls, round(total_exec_time)::bigint, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90)
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8`)
	if err != nil {
		return fmt.Errorf("pg_stat_statements: %w", err)
	}
	defer rows.Close()
	fmt.Fprintln(w, "statements by total time (ms):")
	for rows.Next() {
		var calls, ms, n int64
		var q string
		if err := rows.Scan(&calls, &ms, &n, &q); err != nil {
			return err
		}
		fmt.Fprintf(w, "  %8d ms %6d calls %9d rows  %s\n", ms, calls, n, q)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = db.Pool().Exec(ctx, `SELECT pg_stat_statements_reset()`)
	return err
}
