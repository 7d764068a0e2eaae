package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/agent"
	"github.com/anycatch/anycatch/probe/spool"
)

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "probe.json")
	os.WriteFile(cfg, []byte(`{"collector":"https://file.example","max_pps":10,"max_concurrent":2,"state_dir":"/file","lat":1,"lon":2}`), 0o600)
	env := map[string]string{"ANYCATCH_CONFIG": cfg, "ANYCATCH_MAX_PPS": "20", "ANYCATCH_COLLECTOR": "https://env.example"}
	getenv := func(k string) string { return env[k] }
	s, err := loadSettings([]string{"--max-pps", "30"}, getenv, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxPPS != 30 || s.Collector != "https://env.example" || s.MaxConcurrent != 2 || s.StateDir != "/file" || s.Lat == nil || *s.Lon != 2 {
		t.Fatalf("got %+v; want max_pps 30 (flag), collector from env, max_concurrent and state_dir from file", s)
	}
	s, err = loadSettings(nil, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil || s.MaxPPS != 50 || s.MaxConcurrent != 4 || s.AllowPrivate {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	for _, tc := range []struct {
		args []string
		file string
		want string
	}{
		{[]string{"--max-pps", "5000"}, "", "max-pps: 5000 is outside 1..1000"},
		{[]string{"--max-concurrent", "0"}, "", "max-concurrent: 0 is outside"},
		{[]string{"--lat", "10"}, "", "give both or neither"},
		{[]string{"extra"}, "", "unexpected arguments"},
		{nil, `{"max_ppps": 3}`, `unknown field "max_ppps"`},
	} {
		getenv := func(string) string { return "" }
		if tc.file != "" {
			os.WriteFile(cfg, []byte(tc.file), 0o600)
			getenv = func(k string) string { return map[string]string{"ANYCATCH_CONFIG": cfg}[k] }
		}
		if _, err := loadSettings(tc.args, getenv, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadSettings(%q, file %q) = %v, want error containing %q", tc.args, tc.file, err, tc.want)
		}
	}
}

func TestRenderStatus(t *testing.T) {
	now := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	st := &agent.Status{
		State: "running", Probe: "p7", Collector: "https://collector.example", Version: "v1.0.0", PID: 42,
		Started: now.Add(-time.Hour), Updated: now.Add(-5 * time.Second), StatusEvery: 15,
		MaxPPS: 50, MaxConc: 4, Capabilities: measure.Capabilities{PingMode: "dgram", TraceMode: "recverr", IPv4: true},
		Limitations: []string{"no CAP_NET_RAW: ping uses unprivileged ICMP sockets"},
		Schedule: agent.ScheduleStatus{Version: "v9", CheckedAt: now.Add(-time.Minute), Measurements: 3,
			Refused: []agent.Refusal{{ID: "lan", Address: "10.0.0.1", Reason: "private"}}},
		Runs:   map[measure.Kind]*agent.KindCounts{measure.KindPing: {Runs: 10, Errors: 1}},
		Spool:  spool.Stats{Pending: 2, Bytes: 2048, Dropped: 3},
		Upload: agent.UploadStatus{Accepted: 8, LastOK: now.Add(-30 * time.Second)},
	}
	var b bytes.Buffer
	renderStatus(&b, st, now)
	out := b.String()
	for _, want := range []string{
		"p7 — running (pid 42, status updated 5s ago)",
		"v9: 3 measurements, 1 refused; checked 1m0s ago",
		"50 packets/s, 4 concurrent, private targets refused",
		"ping dgram, trace recverr, raw sockets no",
		"ping 10 (1 failed); 0 skipped",
		"2 pending (2.0 KiB), 3 dropped by limits",
		"8 accepted, 0 duplicate, 0 rejected; last success 30s ago",
		"lan 10.0.0.1: private",
		"no CAP_NET_RAW",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if err := st.Healthy(now); err != nil {
		t.Fatalf("fresh running status unhealthy: %v", err)
	}
	if err := st.Healthy(now.Add(time.Minute)); err == nil {
		t.Fatal("status 65 s old (period 15 s) counted healthy")
	}
}
