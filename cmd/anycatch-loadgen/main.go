// Command anycatch-loadgen drives a collector with simulated probes: it
// enrolls N probes, fetches their schedules and uploads signed, gzipped
// NDJSON batches of realistic identity and ping results at a target rate
// for a bounded time, then reports sustained results/s, upload latency
// percentiles and errors. With --copy-baseline it also measures the raw
// COPY rate of the same rows into the same results table in the same run:
// the physical limit the collector is compared with.
//
// Self-contained run (throwaway PostgreSQL, in-process collector on
// loopback):
//
//	anycatch-loadgen --pg-tmp --probes 40 --rate 60000 --duration 30s --copy-baseline
//
// Against a running server:
//
//	anycatch-loadgen --url http://127.0.0.1:8080 --token act_… --rate 20000
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
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

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
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("anycatch-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "url", "", "collector base URL; empty: serve an in-process collector on 127.0.0.1 (needs --db or --pg-tmp)")
	fs.StringVar(&o.token, "token", "", "enrollment token (needed with --url; created otherwise)")
	fs.StringVar(&o.db, "db", "", "PostgreSQL URL for the in-process collector and --copy-baseline")
	fs.BoolVar(&o.pgTmp, "pg-tmp", false, "start a throwaway PostgreSQL cluster (unsafe settings) and use it")
	fs.IntVar(&o.probes, "probes", 40, "simulated probes")
	fs.IntVar(&o.rate, "rate", 50000, "target results per second, all probes together")
	fs.IntVar(&o.batch, "batch", 500, "results per upload")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long to upload (at most 10m)")
	fs.BoolVar(&o.copyBaseline, "copy-baseline", false, "also measure raw COPY of the same rows into results")
	fs.IntVar(&o.maxUploads, "max-uploads", 1_000_000, "stop after this many uploads")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		return errors.New("--duration must be in (0, 10m]")
	}
	if o.probes < 1 || o.rate < 1 || o.batch < 1 || o.batch > 10000 {
		return errors.New("--probes, --rate must be positive and --batch in 1..10000")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if o.pgTmp {
		dir, err := os.MkdirTemp("", "anycatch-loadgen-pg-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "data"), Unsafe: true, Logger: log})
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		defer c.Close()
		o.db = c.URL("postgres")
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
	}
	if o.token == "" {
		return errors.New("--token is required with --url")
	}
	rep, sample, err := load(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep)
	if o.copyBaseline {
		if db == nil {
			return errors.New("--copy-baseline needs --db or --pg-tmp")
		}
		n := min(max(rep.accepted, 200_000), 1_000_000)
		rate, err := copyBaseline(ctx, db, sample, n)
		if err != nil {
			return fmt.Errorf("copy baseline: %w", err)
		}
		fmt.Fprintf(stdout, "raw COPY baseline: %d rows at %.0f rows/s; collector reached %.0f%% of it\n", n, rate, 100*rep.rate/rate)
	}
	return nil
}

// serveInProcess starts a collector over db on a loopback port with a
// "loadgen" target and returns its URL and an enrollment token.
func serveInProcess(ctx context.Context, db *store.DB, log *slog.Logger) (string, string, func(), error) {
	tg := &store.Target{Name: "loadgen", Addr4: "198.18.53.53", Addr6: "2001:db8:53::53", IntervalSec: 60, Enabled: true,
		Specs: []measure.Spec{{Kind: measure.KindIdentity}, {Kind: measure.KindPing}}, IdentityOrder: catchment.DefaultIdentityOrder}
	if err := db.CreateTarget(ctx, tg); err != nil && !errors.Is(err, store.ErrConflict) {
		return "", "", nil, err
	}
	if tg.ID != 0 {
		if err := db.ReplaceRules(ctx, tg.ID, []catchment.Rule{{Source: "hostname_bind", Match: "regex", Pattern: `^ns\d+\.(?P<site>[a-z]{3})\.example$`}}); err != nil {
			return "", "", nil, err
		}
	}
	st := pgstore.New(db)
	c, err := collector.New(collector.Config{Store: st, Logger: log, Limits: collector.Limits{PerAddr: -1, Per64: -1, PerPrefix: -1}})
	if err != nil {
		return "", "", nil, err
	}
	_, token, err := collector.Tokens{Store: st}.Create(ctx, collector.TokenOptions{Name: "loadgen"})
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
	probes, uploads, errors int
	accepted, dup, rejected int
	byStatus                map[int]int
	elapsed                 time.Duration
	rate                    float64
	p50, p99, max           time.Duration
}

func (r report) String() string {
	return fmt.Sprintf("probes %d, uploads %d (errors %d, statuses %v)\nresults accepted %d, duplicate %d, rejected %d in %s\nsustained %.0f results/s; upload latency p50 %s p99 %s max %s",
		r.probes, r.uploads, r.errors, r.byStatus, r.accepted, r.dup, r.rejected, r.elapsed.Round(time.Millisecond),
		r.rate, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.max.Round(time.Microsecond))
}

type simProbe struct {
	id   string
	key  ed25519.PrivateKey
	msms []measure.Measurement
}

func load(ctx context.Context, o options) (report, []*measure.Result, error) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.probes + 4}}
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
	var (
		mu       sync.Mutex
		lat      []time.Duration
		rep      = report{probes: o.probes, byStatus: map[int]int{}}
		uploads  atomic.Int64
		sampleMu sync.Mutex
		sample   []*measure.Result
	)
	start := time.Now()
	deadline := start.Add(o.duration)
	lctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			next := start.Add(time.Duration(rng.Int64N(int64(interval) + 1)))
			for k := 0; ; k++ {
				if next.After(deadline) || uploads.Add(1) > int64(o.maxUploads) || lctx.Err() != nil {
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
				rs := makeBatch(p, o.batch, rng)
				if k == 0 {
					sampleMu.Lock()
					sample = append(sample, rs...)
					sampleMu.Unlock()
				}
				t0 := time.Now()
				status, ur, err := upload(lctx, client, o.url, p, rs)
				d := time.Since(t0)
				mu.Lock()
				rep.uploads++
				if err != nil {
					rep.errors++
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
	rep.rate = float64(rep.accepted) / rep.elapsed.Seconds()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		rep.p50, rep.p99, rep.max = lat[n/2], lat[min(n-1, n*99/100)], lat[n-1]
	}
	return rep, sample, nil
}

func enroll(ctx context.Context, client *http.Client, url, token string) (*simProbe, error) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(measure.EnrollRequest{Token: token, PublicKey: key.Public().(ed25519.PublicKey), Version: "loadgen"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+measure.PathEnroll, bytes.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var er measure.EnrollResponse
	if err := json.Unmarshal(b, &er); err != nil {
		return nil, err
	}
	p := &simProbe{id: er.Probe, key: key}
	status, sb, err := signed(ctx, client, url, p, http.MethodGet, measure.PathSchedule, nil, nil)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("schedule: %d %v %s", status, err, sb)
	}
	var s measure.Schedule
	if err := json.Unmarshal(sb, &s); err != nil {
		return nil, err
	}
	for _, m := range s.Measurements {
		if m.Spec.Kind == measure.KindIdentity || m.Spec.Kind == measure.KindPing {
			p.msms = append(p.msms, m)
		}
	}
	if len(p.msms) == 0 {
		return nil, errors.New("schedule has no identity or ping measurement")
	}
	return p, nil
}

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

func upload(ctx context.Context, client *http.Client, url string, p *simProbe, rs []*measure.Result) (int, measure.UploadResponse, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	enc := json.NewEncoder(zw)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return 0, measure.UploadResponse{}, err
		}
	}
	zw.Close()
	status, b, err := signed(ctx, client, url, p, http.MethodPost, measure.PathResults, buf.Bytes(), map[string]string{"Content-Encoding": "gzip"})
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
	ts := time.Now().Unix()
	req.Header.Set(measure.HeaderProbe, p.id)
	req.Header.Set(measure.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(measure.HeaderSignature, measure.Sign(p.key, method, path, ts, body))
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

// copyBaseline COPYs n rows shaped like sample (fresh ids) straight into
// results in batches of 5000 and returns rows/s: no staging, no conflict
// check, no catchment state — the physical limit of the table.
func copyBaseline(ctx context.Context, db *store.DB, sample []*measure.Result, n int) (float64, error) {
	if len(sample) == 0 {
		return 0, errors.New("no sample rows")
	}
	type enc struct {
		payload []byte
		raw     [][]byte
	}
	encs := make([]enc, len(sample))
	for i, r := range sample {
		p, raw, err := store.EncodeResult(r)
		if err != nil {
			return 0, err
		}
		encs[i] = enc{p, raw}
	}
	var targetID int
	if err := db.Pool().QueryRow(ctx, `SELECT id FROM targets ORDER BY id LIMIT 1`).Scan(&targetID); err != nil {
		return 0, err
	}
	cols := []string{"target_id", "ts", "id", "probe_id", "kind", "msm", "af", "dst", "rtt_ms", "loss", "identity", "site", "error", "payload", "raw"}
	now := time.Now().UTC()
	start := time.Now()
	for done := 0; done < n; {
		k := min(5000, n-done)
		rows := make([][]any, k)
		for i := range rows {
			s := sample[(done+i)%len(sample)]
			e := encs[(done+i)%len(sample)]
			ts := now.Add(-time.Duration(i) * time.Millisecond)
			var rtt *float32
			if v, ok := s.RTT(); ok {
				f := float32(v)
				rtt = &f
			}
			rows[i] = []any{targetID, ts, [16]byte(measure.NewUUIDv7(ts)), "p-copy", string(s.Kind), s.Measurement, int16(s.AF),
				s.Dst, rtt, nil, nil, nil, nil, e.payload, e.raw}
		}
		if _, err := db.Pool().CopyFrom(ctx, pgx.Identifier{"results"}, cols, pgx.CopyFromRows(rows)); err != nil {
			return 0, err
		}
		done += k
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
