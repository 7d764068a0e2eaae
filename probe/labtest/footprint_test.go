package labtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/lab"
	"github.com/anycatch/anycatch/lab/labstack"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/agent"
)

// footprintTopology is the smallest lab that still has anycast: two sites
// behind two transits and a single client, so labstack starts exactly one
// probe agent, the one measured.
const footprintTopology = `
sites:
  - {code: ams, name: Amsterdam, asn: 65001, lat: 52.37, lon: 4.90, identity: ams1.lab.anycatch.test, nsid: ams1}
  - {code: fra, name: Frankfurt, asn: 65002, lat: 50.11, lon: 8.68, identity: anycast-fra-01, nsid: fra01}
transits:
  - {name: euw, asn: 65101}
  - {name: eue, asn: 65102}
links:
  - {a: ams, b: euw}
  - {a: fra, b: eue, delay: 1ms}
  - {a: euw, b: eue, delay: 5ms}
clients:
  - {name: lon1, region: eu, lat: 51.51, lon: -0.13, transit: euw, delay: 2ms}
`

// Footprint goals from issue 8.
const (
	footprintGoalRSSKiB = 25_000_000 / 1024 // resident set, steady and peak: 25 MB (≈ 23.8 MiB)
	footprintGoalCPUPct = 1.0               // of one core, averaged over the run
)

const (
	footprintTargets  = 50
	footprintInterval = 60 // seconds: the probe's default --min-interval-sec
)

// footprintSpec is the one spec of target i (1-based): a third identity
// queries, a third 3-packet pings, a third traceroutes alternating UDP
// and ICMP, so the agent keeps all three engines busy.
func footprintSpec(i int) measure.Spec {
	switch i % 3 {
	case 1:
		return measure.Spec{Kind: measure.KindIdentity, DNS: &measure.DNSSpec{TimeoutMS: 1000, Retries: 1}}
	case 2:
		return measure.Spec{Kind: measure.KindPing, Ping: &measure.PingSpec{Count: 3, IntervalMS: 200, TimeoutMS: 1500}}
	}
	proto := "icmp"
	if i%2 == 0 {
		proto = "udp"
	}
	return measure.Spec{Kind: measure.KindTrace, Trace: &measure.TraceSpec{Proto: proto, MaxHops: 16, ProbesPerHop: 1, TimeoutMS: 1000}}
}

// procSample is one reading of the agent's /proc entries.
type procSample struct {
	at       time.Time
	rssKiB   int64 // VmRSS
	hwmKiB   int64 // VmHWM: peak RSS since the process started
	anonKiB  int64 // RssAnon: the heap and stacks, without the mapped binary
	threads  int64
	cpuTicks int64 // utime + stime, in clock ticks
}

// TestAgentFootprint measures a real `anycatch-probe run` agent — the
// release build, real engines, real collector — measuring 50 dual-stack
// targets (100 measurements a minute: identity, ping, UDP and ICMP trace)
// in a one-client lab. It samples the agent's /proc entries every second
// and prints RSS (peak and steady), CPU as a share of one core, runs,
// uploads and the binary size as a markdown table. The goals (under 25 MB
// RSS, under 1 % of a core) are logged as verdicts, not asserted: the
// numbers depend on the machine's load. It fails only when the agent does
// not produce results.
//
//	ANYCATCH_LAB_FOOTPRINT=1 go test ./probe/labtest -run TestAgentFootprint -v -timeout 20m
//
// ANYCATCH_LAB_FOOTPRINT_DURATION sets the measured window (default 5m, 1m..30m)
// and ANYCATCH_LAB_FOOTPRINT_WARMUP the excluded warm-up after the agent has
// the whole schedule (default 1m, 0..10m).
func TestAgentFootprint(t *testing.T) {
	if testing.Short() || os.Getenv("ANYCATCH_LAB_FOOTPRINT") == "" {
		t.Skip("set ANYCATCH_LAB_FOOTPRINT=1 (and no -short) to measure the probe agent's footprint in the lab")
	}
	if os.Geteuid() != 0 {
		t.Skip("the footprint test needs root (network namespaces)")
	}
	if err := lab.Preflight(); err != nil {
		t.Skipf("lab preflight: %v", err)
	}
	window := footprintEnvDuration(t, "ANYCATCH_LAB_FOOTPRINT_DURATION", 5*time.Minute, time.Minute, 30*time.Minute)
	warmup := footprintEnvDuration(t, "ANYCATCH_LAB_FOOTPRINT_WARMUP", time.Minute, 0, 10*time.Minute)
	topo, err := lab.ParseTopology([]byte(footprintTopology))
	if err != nil {
		t.Fatal(err)
	}
	// Start-up (build, lab, embedded PostgreSQL, enrollment) and shutdown
	// take a few minutes on a busy machine; everything else is the window.
	ctx, cancel := context.WithTimeout(context.Background(), warmup+window+10*time.Minute)
	defer cancel()

	bins := footprintTempDir(t, "anycatch-footprint-bin-")
	probeBin, probeSize := footprintBuild(t, ctx, bins, "anycatch-probe", "-trimpath", "-ldflags", "-s -w")
	serverBin, _ := footprintBuild(t, ctx, bins, "anycatch-server")

	work := t.TempDir()
	s, err := labstack.Start(ctx, labstack.Options{
		Name:      fmt.Sprintf("f%05x", os.Getpid()&0xfffff),
		Topology:  topo,
		ServerBin: serverBin, ProbeBin: probeBin,
		// The server's embedded cluster, in a directory the postgres user
		// can reach (t.TempDir's parents are 0700); Stop shuts it down.
		DataDir: footprintTempDir(t, "anycatch-footprint-db-"),
		WorkDir: work,
		Log:     footprintLog{t},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	client := s.Lab.Clients()[0].Name
	stateDir := s.ProbeStateDir(client)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop stack: %v", err)
		}
		if t.Failed() {
			for _, f := range []string{"probe-" + client + ".log", "server.log"} {
				b, _ := os.ReadFile(filepath.Join(work, f))
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("--- %s (tail)\n%s", f, b)
			}
		}
	})

	// Only the footprint targets: the stack's own target (6 measurements
	// every 10 s) would otherwise ride along.
	if err := footprintAPI(ctx, s, "PATCH", "/api/v1/targets/"+s.Target, map[string]any{"enabled": false}); err != nil {
		t.Fatalf("disable target %s: %v", s.Target, err)
	}
	names := make([]string, footprintTargets)
	kinds := map[measure.Kind]int{}
	for i := range names {
		names[i] = fmt.Sprintf("fp-%02d", i+1)
		spec := footprintSpec(i + 1)
		kinds[spec.Kind]++
		body := map[string]any{
			"name": names[i], "addr4": s.Lab.AnycastV4().String(), "addr6": s.Lab.AnycastV6().String(),
			"interval_sec": footprintInterval, "specs": []measure.Spec{spec},
		}
		if err := footprintAPI(ctx, s, "POST", "/api/v1/targets", body); err != nil {
			t.Fatalf("create target %s: %v", names[i], err)
		}
	}
	wantMsms := 2 * footprintTargets
	t.Logf("%d targets (%v) on %s and %s, every %d s: %d measurements", footprintTargets, kinds,
		s.Lab.AnycastV4(), s.Lab.AnycastV6(), footprintInterval, wantMsms)

	// The agent enrolls, then picks the targets up at its next schedule
	// refresh (the server tells it 15 s).
	var st *agent.Status
	for deadline := time.Now().Add(3 * time.Minute); ; {
		st, err = agent.ReadStatus(stateDir)
		if err == nil && st.State == "running" && st.Schedule.Measurements == wantMsms {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent has no schedule of %d measurements after 3 min: status %+v, err %v", wantMsms, st, err)
		}
		time.Sleep(time.Second)
	}
	if len(st.Schedule.Refused) > 0 {
		t.Fatalf("agent refused measurements: %+v", st.Schedule.Refused)
	}
	pid, err := footprintFindAgent(probeBin, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != pid {
		t.Fatalf("agent pid: /proc says %d, status file says %d", pid, st.PID)
	}
	t.Logf("agent pid %d has the schedule (%s); warming up for %v", pid, st.Schedule.Version, warmup)

	// Sample from now on, so the log shows the warm-up too; only samples
	// in [t0, t1] count.
	t0 := time.Now().Add(warmup)
	t1 := t0.Add(window)
	var samples []procSample
	var st0 *agent.Status
	load0 := footprintLoadavg()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	maxSamples := int((warmup+window)/time.Second) + 10
	for i := 0; i < maxSamples && !time.Now().After(t1); i++ {
		ps, err := footprintSample(pid)
		if err != nil {
			t.Fatalf("sample agent %d: %v (did it exit?)", pid, err)
		}
		if st0 == nil && !ps.at.Before(t0) {
			if st0, err = agent.ReadStatus(stateDir); err != nil {
				t.Fatal(err)
			}
			load0 = footprintLoadavg()
		}
		samples = append(samples, ps)
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("footprint run: %v", ctx.Err())
		}
	}
	load1 := footprintLoadavg()
	tick.Stop()
	// The agent rewrites its status every 15 s, so counters read at t0 and
	// t1 each lag by up to that; the stored results below are exact.
	stEnd, err := agent.ReadStatus(stateDir)
	if err != nil {
		t.Fatal(err)
	}

	// Let the window's results upload (the agent uploads every 30 s), then
	// count what the collector stored for the window.
	for deadline := time.Now().Add(75 * time.Second); ; {
		cur, err := agent.ReadStatus(stateDir)
		if err == nil && cur.Upload.LastOK.After(t1) && cur.Spool.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("results of the window still uploading after 75 s: status %+v, err %v", cur, err)
			break
		}
		time.Sleep(time.Second)
	}
	if st0 == nil {
		t.Fatal("no agent status for the window")
	}
	stored, byKind := map[string]int{}, map[measure.Kind]int{}
	for i, name := range names {
		var page struct {
			Data []measure.Result `json:"data"`
		}
		path := fmt.Sprintf("/api/v1/results?target=%s&probe=%s&from=%s&to=%s&limit=1000", name, st.Probe,
			t0.UTC().Format(time.RFC3339Nano), t1.UTC().Format(time.RFC3339Nano))
		if err := s.Get(ctx, path, &page); err != nil {
			t.Fatalf("results of %s: %v", name, err)
		}
		stored[name] = len(page.Data)
		byKind[footprintSpec(i+1).Kind] += len(page.Data)
	}

	var in []procSample
	for _, ps := range samples {
		if !ps.at.Before(t0) {
			in = append(in, ps)
		}
	}
	if len(in) < 2 {
		t.Fatalf("only %d samples in the window", len(in))
	}
	first, last := in[0], in[len(in)-1]
	wall := last.at.Sub(first.at)
	ticks := footprintClockTicks()
	cpuPct := float64(last.cpuTicks-first.cpuTicks) / float64(ticks) / wall.Seconds() * 100
	rss := make([]int64, len(in))
	var peakSampled int64
	for i, ps := range in {
		rss[i] = ps.rssKiB
		peakSampled = max(peakSampled, ps.rssKiB)
	}
	slices.Sort(rss)
	steady := rss[len(rss)/2]
	// Growth: mean RSS of the window's first minute against its last.
	mean := func(from, to time.Time) float64 {
		var sum, n int64
		for _, ps := range in {
			if !ps.at.Before(from) && ps.at.Before(to) {
				sum, n = sum+ps.rssKiB, n+1
			}
		}
		if n == 0 {
			return 0
		}
		return float64(sum) / float64(n)
	}
	head, tail := mean(first.at, first.at.Add(time.Minute)), mean(last.at.Add(-time.Minute), last.at.Add(time.Second))
	// CPU per minute of the window, to tell a steady cost from bursts.
	var perMin []string
	for start := 0; start < len(in)-1; {
		end := start
		for end+1 < len(in) && in[end+1].at.Sub(in[start].at) <= time.Minute {
			end++
		}
		if end == start {
			break
		}
		d := in[end].at.Sub(in[start].at).Seconds()
		perMin = append(perMin, fmt.Sprintf("%.2f", float64(in[end].cpuTicks-in[start].cpuTicks)/float64(ticks)/d*100))
		start = end
	}

	runs, runErrs := map[measure.Kind]int64{}, int64(0)
	var runsTotal int64
	for k, c := range stEnd.Runs {
		var r0, e0 int64
		if c0 := st0.Runs[k]; c0 != nil {
			r0, e0 = c0.Runs, c0.Errors
		}
		runs[k] = c.Runs - r0
		runsTotal += runs[k]
		runErrs += c.Errors - e0
	}
	accepted := stEnd.Upload.Accepted - st0.Upload.Accepted
	var storedTotal int
	var empty []string
	for _, name := range names {
		storedTotal += stored[name]
		if stored[name] == 0 {
			empty = append(empty, name)
		}
	}
	expect := int(window/time.Second) / footprintInterval * wantMsms

	mib := func(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
	verdict := func(ok bool) string {
		if ok {
			return "meets goal"
		}
		return "MISSES GOAL"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| metric | value | goal |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| RSS peak (VmHWM, whole life) | %s | < 25 MB: %s |\n", mib(last.hwmKiB), verdict(last.hwmKiB < footprintGoalRSSKiB))
	fmt.Fprintf(&b, "| RSS steady (median VmRSS of window) | %s (min %s, max %s) | < 25 MB: %s |\n", mib(steady), mib(rss[0]), mib(peakSampled), verdict(steady < footprintGoalRSSKiB))
	fmt.Fprintf(&b, "| RSS first → last minute of window | %s → %s | |\n", mib(int64(head)), mib(int64(tail)))
	fmt.Fprintf(&b, "| RssAnon at end | %s | |\n", mib(last.anonKiB))
	fmt.Fprintf(&b, "| CPU avg (utime+stime / wall) | %.2f %% of one core | < 1 %%: %s |\n", cpuPct, verdict(cpuPct < footprintGoalCPUPct))
	fmt.Fprintf(&b, "| CPU per minute | %s %% | |\n", strings.Join(perMin, ", "))
	fmt.Fprintf(&b, "| threads at end | %d | |\n", last.threads)
	fmt.Fprintf(&b, "| runs in window (agent status, ±15 s) | %d (identity %d, ping %d, trace %d; %d errors; %d skipped) | ≈ %d scheduled |\n",
		runsTotal, runs[measure.KindIdentity], runs[measure.KindPing], runs[measure.KindTrace], runErrs, stEnd.Skipped-st0.Skipped, expect)
	fmt.Fprintf(&b, "| results accepted by collector (agent status, ±15 s; uploads every 30 s) | %d | |\n", accepted)
	fmt.Fprintf(&b, "| results stored for the window (API, all 50 targets) | %d (identity %d, ping %d, trace %d) | |\n",
		storedTotal, byKind[measure.KindIdentity], byKind[measure.KindPing], byKind[measure.KindTrace])
	fmt.Fprintf(&b, "| binary size (CGO_ENABLED=0, -trimpath, -s -w) | %.1f MiB (%d bytes) | |\n", float64(probeSize)/(1<<20), probeSize)
	t.Logf("agent footprint, %d targets × 2 AF every %d s, window %v after %v warm-up, %d samples; load average %s at start, %s at end\n\n%s",
		footprintTargets, footprintInterval, wall.Round(time.Second), warmup, len(in), load0, load1, b.String())

	hist := map[int]int{}
	for _, name := range names {
		hist[stored[name]]++
	}
	t.Logf("stored results per target in the window (results: targets): %v", hist)
	if float64(tail) > float64(head)*1.10 && tail-head > 1024 {
		t.Logf("NOTE: RSS grew %.1f MiB (%.0f %%) over the window", (tail-head)/1024, (tail/head-1)*100)
	}
	if storedTotal == 0 || byKind[measure.KindIdentity] == 0 || byKind[measure.KindPing] == 0 || byKind[measure.KindTrace] == 0 {
		t.Fatalf("the agent did not produce results of every kind in the window: %v", byKind)
	}
	if len(empty) > 0 {
		t.Errorf("no stored results in the window for %d targets: %v", len(empty), empty)
	}
}

// footprintEnvDuration reads a duration from the environment, bounded.
func footprintEnvDuration(t *testing.T, name string, def, lo, hi time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		t.Fatalf("%s=%q: want a duration in %v..%v", name, v, lo, hi)
	}
	return d
}

// footprintTempDir is a 0755 temp dir removed after the test: reachable
// by the postgres user the server's embedded cluster runs as.
func footprintTempDir(t *testing.T, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// footprintBuild builds ./cmd/name with CGO_ENABLED=0 and the extra flags
// into dir and returns its path and size.
func footprintBuild(t *testing.T, ctx context.Context, dir, name string, flags ...string) (string, int64) {
	t.Helper()
	out := filepath.Join(dir, name)
	args := append(append([]string{"build", "-o", out}, flags...), "github.com/anycatch/anycatch/cmd/"+name)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, fi.Size()
}

// footprintAPI sends an admin request to the stack's API; labstack's own
// request helper is unexported.
func footprintAPI(ctx context.Context, s *labstack.Stack, method, path string, in any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// footprintFindAgent walks /proc for the one process running bin with
// stateDir on its command line. labstack starts it through `ip netns
// exec`, which execs in place, but a wrapper that forks would show up as
// a different binary and is skipped.
func footprintFindAgent(bin, stateDir string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe != bin {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if slices.Contains(args, "run") && slices.Contains(args, stateDir) {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("find agent: %d processes run %s with state dir %s: %v", len(found), bin, stateDir, found)
	}
	return found[0], nil
}

// footprintSample reads /proc/pid/status and /proc/pid/stat.
func footprintSample(pid int) (procSample, error) {
	ps := procSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			ps.rssKiB = n
		case "VmHWM":
			ps.hwmKiB = n
		case "RssAnon":
			ps.anonKiB = n
		case "Threads":
			ps.threads = n
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// count fields after its closing one. Field 3 (state) is f[0].
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ps, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return ps, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ps, fmt.Errorf("parse /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	ps.cpuTicks = utime + stime
	if ps.rssKiB == 0 {
		return ps, fmt.Errorf("no VmRSS in /proc/%d/status (zombie?)", pid)
	}
	return ps, nil
}

// footprintClockTicks is USER_HZ (getconf CLK_TCK), 100 on Linux unless
// getconf says otherwise.
func footprintClockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// footprintLoadavg is the host's 1, 5 and 15 minute load averages.
func footprintLoadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// footprintLog sends labstack's progress lines to the test log.
type footprintLog struct{ t *testing.T }

func (w footprintLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
