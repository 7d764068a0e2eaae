package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/spool"
	"github.com/anycatch/anycatch/probe/upload/uploadtest"
)

// fakeRunner answers every measurement with a successful ping result
// without sending anything, recording what it was asked to do.
type fakeRunner struct {
	mu    sync.Mutex
	calls []call
	delay time.Duration
}

type call struct {
	at      time.Time
	msm     string
	address string
	packets int
	id      measure.UUID
}

func (f *fakeRunner) run(ctx context.Context, m measure.Measurement) measure.Result {
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
		}
	}
	now := time.Now()
	id := measure.NewUUIDv7(now)
	f.mu.Lock()
	f.calls = append(f.calls, call{at: now, msm: m.ID, address: m.Address, packets: m.Spec.Packets(), id: id})
	f.mu.Unlock()
	med := 1.5
	n := m.Spec.WithDefaults().Ping.Count
	return measure.Result{ID: id, Time: now.UTC(), Ping: &measure.PingResult{Mode: "raw", Size: 56, Sent: n, Received: n, Median: &med}}
}

func (f *fakeRunner) snapshot() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func pingSchedule(version string, n int, addr func(i int) string, count int) measure.Schedule {
	s := measure.Schedule{Version: version}
	for i := range n {
		s.Measurements = append(s.Measurements, measure.Measurement{
			ID: "m" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Target: "test", Address: addr(i),
			IntervalSec: 1, Spec: measure.Spec{Kind: measure.KindPing, Ping: &measure.PingSpec{Count: count, IntervalMS: 10, TimeoutMS: 100}},
		})
	}
	return s
}

func loopback(i int) string {
	if i%2 == 1 {
		return "::1"
	}
	return "127.0.0.1"
}

// testConfig is a fast agent configuration for loopback tests: the fake
// runner never sends packets; AllowPrivate is needed for 127.0.0.1/::1.
func testConfig(t *testing.T, fc *uploadtest.Collector, fr *fakeRunner) Config {
	return Config{
		Collector: fc.URL, EnrollToken: fc.Token, StateDir: filepath.Join(t.TempDir(), "state"),
		Runner: fr.run, Version: "test", AllowPrivate: true,
		MinInterval: time.Second, MinRefresh: 300 * time.Millisecond, UploadEvery: 200 * time.Millisecond,
		UploadDelay: 20 * time.Millisecond, UploadMinGap: 100 * time.Millisecond,
		HeartbeatEvery: 500 * time.Millisecond, StatusEvery: 200 * time.Millisecond,
		MaxBackoff: 300 * time.Millisecond, DrainTimeout: 3 * time.Second, FinalUpload: 3 * time.Second,
		Spool:      spool.Options{NoSync: true},
		HTTPClient: inMemory(fc),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// inMemory is an HTTP client to fc that makes no connection (see
// uploadtest.NewInMemory), with the timeout the agent's real client has.
func inMemory(fc *uploadtest.Collector) *http.Client {
	c := fc.Client()
	c.Timeout = 5 * time.Second
	return c
}

type running struct {
	a      *Agent
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not stop within 15 s")
	}
}

// waitFor polls cond every 20 ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkNoAgentGoroutines(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	if strings.Contains(string(buf), "probe/agent.(*Agent)") {
		t.Fatalf("agent goroutines left after Run returned:\n%s", buf)
	}
}

func countOps(fc *uploadtest.Collector, op string, status int) int {
	n := 0
	for _, r := range fc.Requests() {
		if r.Op == op && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

func TestEnrollScheduleUpload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		fc.SetSchedule(pingSchedule("v1", 4, loopback, 2))
		fr := &fakeRunner{}
		cfg := testConfig(t, fc, fr)
		r := start(t, cfg)

		waitFor(t, 10*time.Second, "results and a 304", func() bool {
			return len(fc.Delivered()) >= 8 && countOps(fc, "schedule", http.StatusNotModified) >= 2
		})
		st := r.a.Status()
		if st.State != "running" || st.Probe == "" || st.Schedule.Version != "v1" || st.Schedule.Measurements != 4 {
			t.Fatalf("status %+v", st)
		}
		r.stop(t)
		checkNoAgentGoroutines(t)

		// Everything the runner produced arrived exactly once.
		delivered := fc.Delivered()
		for _, c := range fr.snapshot() {
			if delivered[c.id] != 1 || fc.WireCount(c.id) != 1 {
				t.Fatalf("result %v delivered %d times, on the wire %d times; want 1", c.id, delivered[c.id], fc.WireCount(c.id))
			}
		}
		for _, res := range fc.Results() {
			if res.Measurement == "" || res.Kind != measure.KindPing || (res.AF == 6) != (res.Dst == "::1") {
				t.Fatalf("result not completed by the agent: %+v", res)
			}
		}
		if len(fc.Heartbeats()) == 0 {
			t.Fatal("no heartbeat")
		}

		// State files: dir 0700, identity 0600, status says stopped.
		if fi, _ := os.Stat(cfg.StateDir); fi.Mode().Perm() != 0o700 {
			t.Fatalf("state dir mode %v, want 0700", fi.Mode().Perm())
		}
		if fi, _ := os.Stat(filepath.Join(cfg.StateDir, IdentityFile)); fi.Mode().Perm() != 0o600 {
			t.Fatalf("identity mode %v, want 0600", fi.Mode().Perm())
		}
		s, err := ReadStatus(cfg.StateDir)
		if err != nil || s.State != "stopped" || s.Runs[measure.KindPing] == nil || s.Runs[measure.KindPing].Runs != int64(len(fr.snapshot())) {
			t.Fatalf("status file: %+v err %v", s, err)
		}

		// A restart needs only the state dir: no second enrollment, the cached
		// schedule is revalidated with its ETag.
		before304 := countOps(fc, "schedule", http.StatusNotModified)
		cfg2 := cfg
		cfg2.Collector, cfg2.EnrollToken = "", ""
		r2 := start(t, cfg2)
		waitFor(t, 5*time.Second, "a 304 after restart", func() bool { return countOps(fc, "schedule", http.StatusNotModified) > before304 })
		r2.stop(t)
		if fc.Probes() != 1 || countOps(fc, "enroll", 0) != 1 {
			t.Fatalf("restart enrolled again: %d probes, %d enroll requests", fc.Probes(), countOps(fc, "enroll", 0))
		}
		if countOps(fc, "schedule", http.StatusOK) != 1 {
			t.Fatalf("schedule fetched in full %d times, want 1 (then 304s)", countOps(fc, "schedule", http.StatusOK))
		}
	})
}

func TestOutageThenExactlyOnceDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		fc.SetSchedule(pingSchedule("v1", 6, loopback, 1))
		fr := &fakeRunner{}
		r := start(t, testConfig(t, fc, fr))
		waitFor(t, 10*time.Second, "first results", func() bool { return len(fc.Delivered()) > 0 })

		fc.SetDown(true)
		downAt := len(fr.snapshot())
		waitFor(t, 10*time.Second, "results spooled during the outage", func() bool {
			return len(fr.snapshot()) >= downAt+18 && r.a.Status().Spool.Pending >= 12
		})
		if got := len(fc.Delivered()); got > downAt+6 {
			t.Fatalf("%d results delivered while the collector was down", got)
		}
		fc.SetDown(false)
		waitFor(t, 10*time.Second, "backlog delivered", func() bool { return r.a.Status().Spool.Pending == 0 && len(fc.Delivered()) >= downAt+18 })
		r.stop(t)

		calls := fr.snapshot()
		delivered := fc.Delivered()
		if len(delivered) != len(calls) {
			t.Fatalf("%d results produced, %d delivered", len(calls), len(delivered))
		}
		for _, c := range calls {
			if delivered[c.id] != 1 || fc.WireCount(c.id) != 1 {
				t.Fatalf("result %v: committed %d, on the wire %d; want exactly once", c.id, delivered[c.id], fc.WireCount(c.id))
			}
		}
	})
}

func TestSpoolLimitCountsDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		fc.SetSchedule(pingSchedule("v1", 20, loopback, 1))
		fr := &fakeRunner{}
		cfg := testConfig(t, fc, fr)
		cfg.MaxPPS = 1000
		cfg.Spool = spool.Options{NoSync: true, MaxBytes: 8 << 10, SegmentBytes: 1 << 10}
		r := start(t, cfg)
		waitFor(t, 10*time.Second, "first run", func() bool { return len(fr.snapshot()) > 0 })
		fc.SetDown(true)
		waitFor(t, 15*time.Second, "drops", func() bool { return r.a.Status().Spool.Dropped >= 20 })
		fc.SetDown(false)
		waitFor(t, 10*time.Second, "heartbeat reporting drops", func() bool {
			hb := fc.Heartbeats()
			return len(hb) > 0 && hb[len(hb)-1].Dropped >= 20
		})
		r.stop(t)
		st, _ := ReadStatus(cfg.StateDir)
		if st.Spool.Bytes > 8<<10 {
			t.Fatalf("spool holds %d bytes, limit 8 KiB", st.Spool.Bytes)
		}
		// Nothing is lost silently: every result produced was delivered,
		// counted as dropped, or is still pending. (A result can be both
		// delivered and dropped when its segment is evicted while its upload is
		// in flight, so this is ≥, not =.)
		if d, n := int64(len(fc.Delivered()))+st.Spool.Dropped+int64(st.Spool.Pending), int64(len(fr.snapshot())); d < n {
			t.Fatalf("delivered+dropped+pending = %d, produced %d", d, n)
		}
	})
}

func TestPrivateTargetsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		addrs := []string{"127.0.0.1", "::1", "10.1.2.3", "100.64.0.1", "198.51.100.7", "198.18.0.1", "2001:db8::1", "fe80::1", "224.0.0.1", "::ffff:192.168.1.1", "1.1.1.1"}
		fc.SetSchedule(pingSchedule("v1", len(addrs), func(i int) string { return addrs[i] }, 1))
		fr := &fakeRunner{}
		cfg := testConfig(t, fc, fr)
		cfg.AllowPrivate = false
		r := start(t, cfg)
		// 1.1.1.1 is only ever handed to the fake runner: no packet is sent.
		waitFor(t, 10*time.Second, "runs of the public target", func() bool { return len(fr.snapshot()) >= 3 })
		r.stop(t)
		for _, c := range fr.snapshot() {
			if c.address != "1.1.1.1" {
				t.Fatalf("runner was asked to measure refused target %s", c.address)
			}
		}
		for _, res := range fc.Results() {
			if res.Dst != "1.1.1.1" {
				t.Fatalf("result for refused target %s uploaded", res.Dst)
			}
		}
		st, _ := ReadStatus(cfg.StateDir)
		if len(st.Schedule.Refused) != len(addrs)-1 || st.Schedule.Measurements != 1 {
			t.Fatalf("status lists %d refused, %d active; want %d and 1", len(st.Schedule.Refused), st.Schedule.Measurements, len(addrs)-1)
		}
	})
}

func TestRateCeilingHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		// 40 pings of 10 packets every second ask for 400 pps; the collector
		// suggests 1000. The local ceiling of 20 must win.
		s := pingSchedule("v1", 40, loopback, 10)
		s.MaxPPS = 1000
		fc.SetSchedule(s)
		fr := &fakeRunner{}
		cfg := testConfig(t, fc, fr)
		cfg.MaxPPS = 20
		cfg.MaxConcurrent = 8
		r := start(t, cfg)
		waitFor(t, 10*time.Second, "first run", func() bool { return len(fr.snapshot()) > 0 })
		time.Sleep(3 * time.Second)
		r.stop(t)

		calls := fr.snapshot()
		first, last := calls[0].at, calls[len(calls)-1].at
		packets := 0
		for _, c := range calls {
			packets += c.packets
		}
		window := last.Sub(first).Seconds()
		// Bucket bound: burst (one second's worth) + rate × window, plus the
		// last run's packets counted at its start, plus 5 % slack.
		limit := (20 + 20*window + 10) * 1.05
		t.Logf("%d packets in %.2f s (%.1f pps) across %d runs; limit %.0f", packets, window, float64(packets)/window, len(calls), limit)
		if float64(packets) > limit {
			t.Fatalf("%d packets in %.2f s exceeds the ceiling (limit %.0f)", packets, window, limit)
		}
		if float64(packets) < 20*window*0.5 {
			t.Fatalf("only %d packets in %.2f s: the ceiling starves runs", packets, window)
		}
		if st := r.a.Status(); st.MaxPPS != 20 || st.Skipped == 0 {
			t.Fatalf("status max_pps %d skipped %d; want 20 and some skipped runs", st.MaxPPS, st.Skipped)
		}
	})
}

func TestRetryAfterRespected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		fc.SetSchedule(pingSchedule("v1", 4, loopback, 1))
		fc.FailNext("results", http.StatusTooManyRequests, "2", 1)
		fr := &fakeRunner{}
		r := start(t, testConfig(t, fc, fr))
		waitFor(t, 10*time.Second, "delivery after the 429", func() bool { return len(fc.Delivered()) > 0 })
		r.stop(t)
		var t429, tNext time.Time
		for _, q := range fc.Requests() {
			if q.Op != "results" {
				continue
			}
			if q.Status == http.StatusTooManyRequests {
				t429 = q.Time
			} else if !t429.IsZero() && tNext.IsZero() {
				tNext = q.Time
			}
		}
		if t429.IsZero() || tNext.IsZero() {
			t.Fatalf("want a 429 then another upload; requests: %+v", fc.Requests())
		}
		if gap := tNext.Sub(t429); gap < 2*time.Second-50*time.Millisecond {
			t.Fatalf("next upload %s after the 429, want ≥ Retry-After 2s", gap)
		}
	})
}

func TestVerdictsAppliedPerLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		fc.SetSchedule(pingSchedule("v1", 4, loopback, 1))
		var mu sync.Mutex
		omit := true
		fc.OmitVerdicts(func(line int) bool { mu.Lock(); defer mu.Unlock(); return omit && line%2 == 0 })
		fc.Reject(func(r *measure.Result) string {
			if r.Measurement == "mba" {
				return "unknown measurement"
			}
			return ""
		})
		fr := &fakeRunner{}
		r := start(t, testConfig(t, fc, fr))
		waitFor(t, 10*time.Second, "partial verdicts", func() bool { return len(fc.Delivered()) >= 6 && r.a.Status().Spool.Pending > 0 })
		mu.Lock()
		omit = false
		mu.Unlock()
		waitFor(t, 10*time.Second, "lines without verdicts retried", func() bool { return r.a.Status().Spool.Pending == 0 })
		st := r.a.Status()
		r.stop(t)
		delivered := fc.Delivered()
		rejected := 0
		for _, c := range fr.snapshot() {
			want := 1
			if c.msm == "mba" {
				want = 0
				rejected++
			}
			if delivered[c.id] != want {
				t.Fatalf("result %v of %s committed %d times, want %d", c.id, c.msm, delivered[c.id], want)
			}
		}
		if rejected == 0 || st.Upload.Rejected == 0 {
			t.Fatalf("no rejected results (runs %d, status %d)", rejected, st.Upload.Rejected)
		}
	})
}

func TestShutdownSpoolsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		fc.SetSchedule(pingSchedule("v1", 2, loopback, 1))
		fr := &fakeRunner{delay: 700 * time.Millisecond}
		cfg := testConfig(t, fc, fr)
		cfg.UploadEvery = time.Hour // only the final upload sends anything
		r := start(t, cfg)
		waitFor(t, 10*time.Second, "enrollment", func() bool { return fc.Probes() == 1 })
		time.Sleep(1500 * time.Millisecond) // runs are in flight
		r.stop(t)
		calls := fr.snapshot()
		if len(calls) == 0 {
			t.Fatal("no run finished")
		}
		delivered := fc.Delivered()
		for _, c := range calls {
			if delivered[c.id] != 1 {
				t.Fatalf("in-flight result %v not delivered by the final upload", c.id)
			}
		}
	})
}
