package importer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/atlas/importer"
	"github.com/anycatch/anycatch/store"
)

// fixtureRecords returns every record of the fixture files as a JSON object.
func fixtureRecords(t testing.TB) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(fixtureDir(t), "*json"))
	var out []map[string]any
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var recs []map[string]any
		if strings.HasSuffix(path, ".json") {
			if err := json.Unmarshal(data, &recs); err != nil {
				t.Fatal(err)
			}
		} else {
			for _, l := range bytes.Split(data, []byte("\n")) {
				if len(bytes.TrimSpace(l)) == 0 {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal(l, &m); err != nil {
					t.Fatal(err)
				}
				recs = append(recs, m)
			}
		}
		out = append(out, recs...)
	}
	return out
}

// writeSynthetic writes n NDJSON lines: the fixture records in turn, each
// with its own probe id (20,000 probes) and timestamp (one second apart
// from 2021-02-10), so every line is a new result.
func writeSynthetic(t testing.TB, path string, n int) {
	t.Helper()
	recs := fixtureRecords(t)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := int64(1612915200) // 2021-02-10T00:00:00Z
	for i := 0; i < n; i++ {
		m := recs[i%len(recs)]
		ts := base + int64(i)
		m["prb_id"] = 2000000 + i%20000
		m["timestamp"] = ts
		if rs, ok := m["resultset"].([]any); ok {
			for _, e := range rs {
				if em, ok := e.(map[string]any); ok {
					em["time"] = ts
				}
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rssMB returns the process's resident set size in MB.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// TestImportLargeFile is the import rate measurement (docs/benchmarks.md,
// "Atlas import"). It runs only when ANYCATCH_IMPORT_LINES is set:
//
//	ANYCATCH_IMPORT_LINES=200000 go test ./atlas/importer -run LargeFile -v
//
// The synthetic file lives in the test's temp dir. RSS is sampled every
// 100 ms during the import; it must stay flat (the reader holds one line,
// the importer one batch).
func TestImportLargeFile(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ANYCATCH_IMPORT_LINES"))
	if n <= 0 {
		t.Skip("set ANYCATCH_IMPORT_LINES (e.g. 200000) to measure the import rate")
	}
	path := filepath.Join(t.TempDir(), "synthetic.ndjson")
	start := time.Now()
	writeSynthetic(t, path, n)
	fi, _ := os.Stat(path)
	t.Logf("generated %d lines, %.1f MB in %.1f s", n, float64(fi.Size())/1e6, time.Since(start).Seconds())
	runtime.GC()

	db := openDB(t)
	ctx := context.Background()
	prep, err := importer.PrepareTarget(ctx, db, importer.TargetOptions{Name: "k-root", Create: true, RulesFile: importer.BuiltinRules})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var samples []float64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() { // owned by this test: stopped when done closes
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				mu.Lock()
				samples = append(samples, rssMB())
				mu.Unlock()
			}
		}
	}()
	var progress bytes.Buffer
	ts := &timedStore{DB: db}
	st, err := importer.ImportFile(ctx, importer.Options{Store: ts, Target: *prep.Target, Identifier: prep.Identifier,
		Progress: &progress}, path)
	close(done)
	<-stopped
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", st.Summary())
	t.Logf("progress lines: %d, last: %s", strings.Count(progress.String(), "\n"), lastLine(progress.String()))
	if st.Bad != 0 || st.New+st.Duplicate != st.Results || st.Results < n {
		t.Errorf("stats %+v", st)
	}
	if c := count(t, db, `SELECT count(*) FROM results`); c != st.New {
		t.Errorf("stored %d, stats say %d new", c, st.New)
	}
	if len(samples) < 4 {
		t.Fatalf("only %d RSS samples", len(samples))
	}
	q := func(f float64) float64 { return samples[int(f*float64(len(samples)-1))] }
	peak := 0.0
	for _, s := range samples {
		peak = max(peak, s)
	}
	t.Logf("RSS MB at 10%%/50%%/90%%/100%% of the import: %.0f / %.0f / %.0f / %.0f; peak %.0f (%d samples)",
		q(0.1), q(0.5), q(0.9), q(1), peak, len(samples))
	t.Logf("time in UpsertExternalProbes %.1f s, IngestBatch %.1f s, RollupResults %.1f s", ts.probes.Seconds(), ts.ingest.Seconds(), ts.rollup.Seconds())
	t.Logf("IMPORT RATE: %.0f results/s (%d results, %.1f s)", st.Rate(), st.Results, st.Elapsed.Seconds())
	// Flat: the second half of the import uses no more memory than the
	// first tenth plus slack for GC timing.
	if q(0.9) > q(0.1)+64 || peak > 400 {
		t.Errorf("RSS grew: %.0f MB at 10%%, %.0f MB at 90%%, peak %.0f MB", q(0.1), q(0.9), peak)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// timedStore measures the time spent in each store call.
type timedStore struct {
	*store.DB
	probes, ingest, rollup time.Duration
}

func (s *timedStore) UpsertExternalProbes(ctx context.Context, ps []store.ExternalProbe) (int, error) {
	defer func(t time.Time) { s.probes += time.Since(t) }(time.Now())
	return s.DB.UpsertExternalProbes(ctx, ps)
}

func (s *timedStore) IngestBatch(ctx context.Context, rows []store.ResultRow) ([]bool, error) {
	defer func(t time.Time) { s.ingest += time.Since(t) }(time.Now())
	return s.DB.IngestBatch(ctx, rows)
}

func (s *timedStore) RollupResults(ctx context.Context, from, to time.Time) error {
	defer func(t time.Time) { s.rollup += time.Since(t) }(time.Now())
	return s.DB.RollupResults(ctx, from, to)
}
