// Package e2e checks the whole platform against a real anycast network: the
// lab (BIRD2 + NSD in namespaces), anycatch-server on a throwaway
// PostgreSQL, and one anycatch-probe agent per lab client, all driven
// through their binaries and the public API. It needs root.
package e2e

import (
	"context"
	"fmt"
	"github.com/anycatch/anycatch/internal/fixtures"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/lab"
	"github.com/anycatch/anycatch/lab/labstack"
	"github.com/anycatch/anycatch/measure"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const interval = 10 // seconds between measurements of the lab target

// buildBinaries compiles the probe and server the way a user gets them.
func buildBinaries(t *testing.T) (server, probe string) {
	t.Helper()
	dir := t.TempDir()
	root := fixtures.ModuleRoot(t)
	for _, b := range []string{"anycatch-server", "anycatch-probe"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "./cmd/"+b)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b, err, out)
		}
	}
	return filepath.Join(dir, "anycatch-server"), filepath.Join(dir, "anycatch-probe")
}

// startStack starts the lab, the server and one probe per lab client the
// way labstack.Start does, with what opts leaves empty filled in: the
// binaries (built here), a lab name per process from prefix, a throwaway
// database, a work directory, the package's interval and the test log. The
// stack stops when the test ends; a failed test gets the stack's logs.
func startStack(ctx context.Context, t *testing.T, prefix string, opts labstack.Options) *labstack.Stack {
	t.Helper()
	if opts.ServerBin == "" {
		opts.ServerBin, opts.ProbeBin = buildBinaries(t)
	}
	if opts.Name == "" {
		opts.Name = labName(prefix)
	}
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = pgtest.NewURL(t)
	}
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	if opts.IntervalSec == 0 {
		opts.IntervalSec = interval
	}
	if opts.Log == nil {
		opts.Log = testWriter{t}
	}
	s, err := labstack.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop stack: %v", err)
		}
		if t.Failed() {
			dumpLogs(t, opts.WorkDir)
		}
	})
	return s
}

func requireLab(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end lab test skipped in -short mode")
	}
	if err := lab.Preflight(); err != nil {
		t.Skipf("anycast lab unavailable: %v", err)
	}
}

// waitCatchment polls the API until its catchment for af equals the lab's
// truth, and returns how long that took.
func waitCatchment(ctx context.Context, t *testing.T, s *labstack.Stack, af int, limit time.Duration) (time.Duration, map[string]labstack.Observed) {
	t.Helper()
	start := time.Now()
	var last []string
	for time.Since(start) < limit {
		exp, err := s.Expect(ctx, af)
		if err != nil {
			t.Fatalf("truth: %v", err)
		}
		got, err := s.Catchment(ctx, af)
		if err == nil {
			if last = labstack.Mismatches(exp, got); last == nil {
				return time.Since(start), got
			}
		} else {
			last = []string{err.Error()}
		}
		time.Sleep(500 * time.Millisecond)
	}
	sort.Strings(last)
	t.Fatalf("IPv%d catchment did not match the lab's truth within %s:\n  %s", af, limit, strings.Join(last, "\n  "))
	return 0, nil
}

func TestEndToEnd(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	s := startStack(ctx, t, "e", labstack.Options{})

	// 1. Every probe enrolls and its catchment equals the routers' truth,
	// for both address families.
	took, got4 := waitCatchment(ctx, t, s, 4, 90*time.Second)
	t.Logf("IPv4 catchment matches the lab's truth %s after start", took.Round(time.Millisecond))
	took, _ = waitCatchment(ctx, t, s, 6, 30*time.Second)
	t.Logf("IPv6 catchment matches %s later", took.Round(time.Millisecond))

	// 2. Ping RTTs match the configured delays; traceroutes end at the site.
	exp, err := s.Expect(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkPings(ctx, t, s, exp)
	checkTraces(ctx, t, s, got4)

	// 3. Withdraw the site serving the most clients: every affected probe
	// moves to the site truth names, within an interval plus a margin.
	site := busiestSite(exp)
	affected := clientsOf(exp, site)
	t.Logf("withdrawing %s (serves %v)", site, affected)
	withdrawAt := time.Now()
	if err := s.Lab.Withdraw(ctx, site); err != nil {
		t.Fatalf("withdraw %s: %v", site, err)
	}
	limit := time.Duration(interval)*time.Second + 15*time.Second
	took, after := waitCatchment(ctx, t, s, 4, limit)
	t.Logf("DETECTION DELAY after withdrawing %s: %s (probe interval %d s)", site, took.Round(time.Millisecond), interval)
	for _, c := range affected {
		if after[c].Site == site {
			t.Errorf("%s still at withdrawn site %s", c, site)
		}
	}
	checkChanges(ctx, t, s, withdrawAt, site, affected, true)

	restoreAt := time.Now()
	if err := s.Lab.Restore(ctx, site); err != nil {
		t.Fatalf("restore %s: %v", site, err)
	}
	took, back := waitCatchment(ctx, t, s, 4, limit)
	t.Logf("DETECTION DELAY after restoring %s: %s", site, took.Round(time.Millisecond))
	for _, c := range affected {
		if back[c].Site != site {
			t.Errorf("%s at %s after restore, want %s", c, back[c].Site, site)
		}
	}
	checkChanges(ctx, t, s, restoreAt, site, affected, false)

	// The map draws both families' tracks: let IPv6 settle too, so its
	// dots agree with the IPv4 catchment the check compares against.
	waitCatchment(ctx, t, s, 6, limit)
	screenshotMap(ctx, t, s)
}

// checkPings compares each probe's latest ping median with the RTT the lab
// computes from its configured one-way delays.
func checkPings(ctx context.Context, t *testing.T, s *labstack.Stack, exp map[string]labstack.Expected) {
	t.Helper()
	for _, c := range s.Lab.Clients() {
		r := latestResult(ctx, t, s, c.Name, measure.KindPing, 4)
		if r == nil || r.Ping == nil || r.Ping.Median == nil {
			t.Errorf("%s: no ping result with replies: %+v", c.Name, r)
			continue
		}
		want := float64(exp[c.Name].RTT) / float64(time.Millisecond)
		got := *r.Ping.Median
		if got < want-1 || got > want+5+want*0.05 {
			t.Errorf("%s: ping median %.2f ms, lab delays say %.2f ms", c.Name, got, want)
		} else {
			t.Logf("%s: ping median %.2f ms (configured %.0f ms)", c.Name, got, want)
		}
	}
}

// checkTraces checks every probe's latest IPv4 traceroute reached the
// anycast address through the path to the site it is caught by.
func checkTraces(ctx context.Context, t *testing.T, s *labstack.Stack, got map[string]labstack.Observed) {
	t.Helper()
	for _, c := range s.Lab.Clients() {
		r := latestResult(ctx, t, s, c.Name, measure.KindTrace, 4)
		if r == nil || r.Trace == nil {
			t.Errorf("%s: no trace result", c.Name)
			continue
		}
		if !r.Trace.Reached || len(r.Trace.Hops) == 0 {
			t.Errorf("%s: trace did not reach %s: %+v", c.Name, r.Dst, r.Trace)
			continue
		}
		last := r.Trace.Hops[len(r.Trace.Hops)-1]
		from := ""
		for _, p := range last.Probes {
			if p.From != "" {
				from = p.From
			}
		}
		if from != s.Lab.AnycastV4().String() {
			t.Errorf("%s: trace ends at %q, want the anycast address %s", c.Name, from, s.Lab.AnycastV4())
		}
		t.Logf("%s: trace reached %s (site %s) in %d hops", c.Name, from, got[c.Name].Site, len(r.Trace.Hops))
	}
}

// checkChanges asks the changes API for the window since `since` and checks
// every affected probe has an event leaving (withdraw) or entering
// (restore) the site.
func checkChanges(ctx context.Context, t *testing.T, s *labstack.Stack, since time.Time, site string, affected []string, leaving bool) {
	t.Helper()
	var rep struct {
		Changes []struct {
			Probe    string `json:"probe"`
			AF       int    `json:"af"`
			FromSite string `json:"from_site"`
			ToSite   string `json:"to_site"`
		} `json:"changes"`
		Sites []struct {
			Site   string `json:"site"`
			Gained int    `json:"gained"`
			Lost   int    `json:"lost"`
		} `json:"sites"`
	}
	path := fmt.Sprintf("/api/v1/targets/%s/changes?from=%s&af=4", s.Target, since.UTC().Format(time.RFC3339))
	if err := s.Get(ctx, path, &rep); err != nil {
		t.Fatalf("changes: %v", err)
	}
	for _, c := range affected {
		id := s.ProbeID(c)
		found := false
		for _, ch := range rep.Changes {
			if ch.Probe == id && (leaving && ch.FromSite == site || !leaving && ch.ToSite == site) {
				found = true
			}
		}
		if !found {
			t.Errorf("changes since %s: no event for %s (%s) %s %s; got %+v", since.Format(time.TimeOnly), c, id,
				map[bool]string{true: "leaving", false: "entering"}[leaving], site, rep.Changes)
		}
	}
	for _, sum := range rep.Sites {
		if sum.Site == site {
			n := sum.Gained
			if leaving {
				n = sum.Lost
			}
			if n < len(affected) {
				t.Errorf("site summary for %s: %+v, want at least %d %s", site, sum, len(affected), map[bool]string{true: "lost", false: "gained"}[leaving])
			}
		}
	}
}

// latestResult returns the client's newest result of kind and af, waiting
// up to two measurement intervals for one to arrive (each measurement of a
// target runs at its own offset within the interval).
func latestResult(ctx context.Context, t *testing.T, s *labstack.Stack, client string, kind measure.Kind, af int) *measure.Result {
	t.Helper()
	deadline := time.Now().Add(2*interval*time.Second + 5*time.Second)
	for {
		r := newestResult(ctx, t, s, client, kind, af)
		if r != nil || time.Now().After(deadline) {
			return r
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func newestResult(ctx context.Context, t *testing.T, s *labstack.Stack, client string, kind measure.Kind, af int) *measure.Result {
	t.Helper()
	var page struct {
		Data []measure.Result `json:"data"`
	}
	from := time.Now().Add(-3 * interval * time.Second).UTC().Format(time.RFC3339)
	path := fmt.Sprintf("/api/v1/results?target=%s&probe=%s&kind=%s&from=%s&limit=100", s.Target, s.ProbeID(client), kind, from)
	if err := s.Get(ctx, path, &page); err != nil {
		t.Fatalf("results: %v", err)
	}
	var best *measure.Result
	for i := range page.Data {
		r := &page.Data[i]
		if r.AF == af && (best == nil || r.Time.After(best.Time)) {
			best = r
		}
	}
	return best
}

func busiestSite(exp map[string]labstack.Expected) string {
	n := map[string]int{}
	best := ""
	for _, e := range exp {
		if e.State != "site" {
			continue
		}
		n[e.Site]++
		if best == "" || n[e.Site] > n[best] || n[e.Site] == n[best] && e.Site < best {
			best = e.Site
		}
	}
	return best
}

func clientsOf(exp map[string]labstack.Expected, site string) []string {
	var out []string
	for c, e := range exp {
		if e.Site == site {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func dumpLogs(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		t.Logf("--- %s (tail)\n%s", filepath.Base(f), b)
	}
}

// labName gives each test process its own lab instance name (namespaces are
// "<name>-<node>"), so two runs on one machine never share namespaces.
func labName(prefix string) string {
	return fmt.Sprintf("%s%05x", prefix, os.Getpid()&0xfffff)
}
