package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

var updateGolden = flag.Bool("update-measure", false, "rewrite testdata/measure.golden")

// TestCmdMeasure runs the client against a fake API: the request it sends,
// and the lines it prints as the stream arrives (golden file).
func TestCmdMeasure(t *testing.T) {
	created := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	var got map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/measurements", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k1" {
			http.Error(w, `{"error":{"code":"unauthorized","message":"no key"}}`, 401)
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(measure.OnDemandStatus{ID: "od-1", Status: "running", Target: "lab",
			Measurements: []string{"lab/identity/4", "lab/ping/4"}, Probes: []string{"p-a", "p-b", "p-c"}, Created: created})
	})
	mux.HandleFunc("GET /api/v1/measurements/od-1", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/x-ndjson" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		med := 12.25
		evs := []measure.OnDemandEvent{
			{Seq: 1, At: created.Add(210 * time.Millisecond), Probe: "p-a", Measurement: "lab/identity/4", Outcome: "result",
				Result: &measure.Result{Kind: measure.KindIdentity, DNS: &measure.DNSResult{Exchanges: []measure.DNSExchange{{RTT: 11.5, Rcode: "NOERROR"}},
					Identity: &measure.Identity{HostnameBind: "ns1.ams.lab", NSID: "ams-1"}}}},
			{Seq: 2, At: created.Add(650 * time.Millisecond), Probe: "p-a", Measurement: "lab/ping/4", Outcome: "result",
				Result: &measure.Result{Kind: measure.KindPing, Ping: &measure.PingResult{Sent: 3, Received: 3, Median: &med}}},
			{Seq: 3, At: created.Add(700 * time.Millisecond), Probe: "p-b", Measurement: "lab/identity/4", Outcome: "refused", Reason: "target 10.0.0.1 is private"},
			{Seq: 4, At: created, Probe: "p-c", Outcome: "offline", Reason: "probe holds no live channel to this collector"},
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, ev := range evs {
			json.NewEncoder(w).Encode(ev)
			w.(http.Flusher).Flush()
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var stdout, stderr bytes.Buffer
	err := cmdMeasure(context.Background(), []string{"--api", srv.URL, "--key", "k1", "--target", "lab",
		"--from", "country=BR", "--from", "asn=AS64500", "--limit", "3", "identity,ping", "--af", "4"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("measure: %v\n%s", err, stderr.String())
	}
	sel, _ := got["from"].(map[string]any)
	if got["target"] != "lab" || got["limit"] != 3.0 || got["af"] != 4.0 || sel["country"] != "BR" || sel["asn"] != 64500.0 ||
		len(got["kinds"].([]any)) != 2 {
		t.Errorf("request %v", got)
	}
	out := stdout.String() + "--- stderr\n" + stderr.String()
	golden := filepath.Join("testdata", "measure.golden")
	if *updateGolden {
		os.WriteFile(golden, []byte(out), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s (-update-measure to accept):\n%s", golden, out)
	}

	// Errors are clear: a refused start names the server's answer.
	err = cmdMeasure(context.Background(), []string{"--api", srv.URL, "--key", "wrong", "--target", "lab"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad key: %v", err)
	}
	if err := cmdMeasure(context.Background(), []string{"--api", srv.URL, "--from", "planet=mars", "--target", "lab"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "planet") {
		t.Errorf("bad selection: %v", err)
	}
	if err := cmdMeasure(context.Background(), []string{"--api", srv.URL}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--target") {
		t.Errorf("no target: %v", err)
	}
	if err := cmdMeasure(context.Background(), []string{"--api", srv.URL, "--target", "lab", "--address", "198.51.100.7"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--address") {
		t.Errorf("target and address: %v", err)
	}
	// --address sends the address instead of a target.
	got = nil
	if err := cmdMeasure(context.Background(), []string{"--api", srv.URL, "--key", "k1", "--address", "198.51.100.7", "ping"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("measure --address: %v", err)
	}
	if _, hasTarget := got["target"]; got["address"] != "198.51.100.7" || hasTarget {
		t.Errorf("request %v, want address and no target", got)
	}
}
