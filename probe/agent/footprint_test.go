package agent

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/probe/upload/uploadtest"
)

// TestFootprint measures the memory of an agent running 50 measurements
// (fake runner, fake collector, fsync'd spool) for 20 s. It is a
// measurement, not an assertion; run it with
//
//	ANYCATCH_FOOTPRINT=1 go test ./probe/agent -run Footprint -v
func TestFootprint(t *testing.T) {
	if os.Getenv("ANYCATCH_FOOTPRINT") == "" {
		t.Skip("set ANYCATCH_FOOTPRINT=1 to measure")
	}
	fc := uploadtest.New(t)
	fc.SetSchedule(pingSchedule("v1", 50, loopback, 3))
	fr := &fakeRunner{}
	cfg := testConfig(t, fc, fr)
	cfg.Spool.NoSync = false
	cfg.UploadEvery = 5 * time.Second
	r := start(t, cfg)
	time.Sleep(20 * time.Second)
	status := func() string {
		b, _ := os.ReadFile("/proc/self/status")
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "VmHWM") {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		}
		return strings.Join(out, ", ")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("50 measurements, 20 s: %d runs, %d delivered; %s; heap in use %.1f MiB, sys %.1f MiB; %d goroutines (test process incl. fake collector)",
		len(fr.snapshot()), len(fc.Delivered()), status(), float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20), runtime.NumGoroutine())
	r.stop(t)
}
