package agent

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycatch/anycatch/probe/upload/uploadtest"
)

// Footprint budgets of an agent running 50 measurements for footprintRun,
// for the whole test process (fake collector included). Generous: CI
// machines have 2 cores and run other tests at the same time; on the
// shared development machine the process peaked at ~15 MiB and used
// ~0.3-0.6 s of CPU.
const (
	footprintRun    = 10 * time.Second // of the bubble's fake clock
	footprintMaxRSS = 150 << 20        // peak resident set (VmHWM), bytes
	footprintMaxCPU = 10 * time.Second
)

// TestFootprint runs an agent with 50 measurements (fake runner, fake
// collector) for footprintRun of the bubble's fake clock, so the agent
// does that much work at once, and checks the process's peak memory and
// CPU time against the budgets. The spool does not fsync (the package's
// tests stay under 3 s); ANYCATCH_FOOTPRINT_FSYNC=1 measures with fsync.
func TestFootprint(t *testing.T) {
	cpuBefore := cpuTime(t)
	synctest.Test(t, func(t *testing.T) {
		fc := uploadtest.NewInMemory(t)
		fc.SetSchedule(pingSchedule("v1", 50, loopback, 3))
		fr := &fakeRunner{}
		cfg := testConfig(t, fc, fr)
		cfg.Spool.NoSync = os.Getenv("ANYCATCH_FOOTPRINT_FSYNC") == ""
		cfg.UploadEvery = 5 * time.Second
		r := start(t, cfg)
		time.Sleep(footprintRun)
		r.stop(t)
		if runs := len(fr.snapshot()); runs < 50 {
			t.Errorf("%d runs in %v of 50 measurements: the agent hardly ran", runs, footprintRun)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("50 measurements, %v: %d runs, %d delivered; heap in use %.1f MiB, sys %.1f MiB",
			footprintRun, len(fr.snapshot()), len(fc.Delivered()), float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20))
	})
	cpu := cpuTime(t) - cpuBefore
	rss, hwm := procStatus(t, "VmRSS"), procStatus(t, "VmHWM")
	t.Logf("process: VmRSS %.1f MiB, VmHWM %.1f MiB, CPU %v (budgets %d MiB, %v)",
		float64(rss)/(1<<20), float64(hwm)/(1<<20), cpu.Round(time.Millisecond), footprintMaxRSS>>20, footprintMaxCPU)
	if hwm > footprintMaxRSS {
		t.Errorf("peak RSS %.1f MiB exceeds the budget of %d MiB", float64(hwm)/(1<<20), footprintMaxRSS>>20)
	}
	if cpu > footprintMaxCPU {
		t.Errorf("CPU time %v exceeds the budget of %v", cpu, footprintMaxCPU)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(v)
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && len(f) == 2 && f[1] == "kB" {
				return n << 10
			}
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
