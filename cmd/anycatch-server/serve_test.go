package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anycatch/anycatch/internal/pgcluster"
	"github.com/anycatch/anycatch/store"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs serve with an embedded database in dataDir and returns
// its address and a stop function that cancels it and returns its error.
func startServe(t *testing.T, dataDir string) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{"--data-dir", dataDir, "--database-url=", "--listen", "127.0.0.1:0", "--log-level", "debug"},
			logs, func(a net.Addr) { addrs <- a })
	}()
	select {
	case a := <-addrs:
		addr = a.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve exited early: %v\nlogs:\n%s", err, logs)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("serve not listening after 2 minutes\nlogs:\n%s", logs)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatalf("serve did not return within a minute of cancel\nlogs:\n%s", logs)
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

func health(t *testing.T, addr string) (int, map[string]string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode /healthz: %v", err)
	}
	return resp.StatusCode, body
}

func postmasterPID(t *testing.T, pgDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pgDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("read postmaster.pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	return pid
}

func TestServeEmbeddedDatabase(t *testing.T) {
	if _, err := pgcluster.FindBinDir(); err != nil {
		t.Skip(err)
	}
	dataDir, err := os.MkdirTemp("", "anycatch-serve-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataDir) })
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pgDir := filepath.Join(dataDir, "postgres")
	dbURL := (&url.URL{Scheme: "postgres", Path: "/" + embeddedDatabase,
		RawQuery: url.Values{"host": {pgDir}, "user": {"postgres"}}.Encode()}).String()
	ctx := context.Background()

	addr, stop := startServe(t, dataDir)
	if code, body := health(t, addr); code != http.StatusOK || !reflect.DeepEqual(body, map[string]string{"status": "ok", "database": "ok"}) {
		t.Errorf("/healthz = %d %v, want 200 {status: ok, database: ok}", code, body)
	}
	db, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatalf("open the embedded database: %v", err)
	}
	if err := db.CreateTarget(ctx, &store.Target{Name: "kept", Addr4: "198.51.100.53"}); err != nil {
		t.Fatal(err)
	}
	if parts, err := db.Partitions(ctx); err != nil || len(parts) < 8 {
		t.Errorf("partitions after start = %v (err %v), want today and 7 ahead", parts, err)
	}
	db.Close()
	pid := postmasterPID(t, pgDir)

	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after cancel, want nil", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("postgres (pid %d) still running after the server stopped", pid)
	}
	if _, err := os.Stat(filepath.Join(pgDir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("postmaster.pid after stop: %v, want removed by a clean shutdown", err)
	}

	// A second start reuses the cluster and its data.
	addr, stop = startServe(t, dataDir)
	if code, _ := health(t, addr); code != http.StatusOK {
		t.Errorf("/healthz after restart = %d, want 200", code)
	}
	db, err = store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetTarget(ctx, "kept"); err != nil {
		t.Errorf("target from the first run: %v, want it kept", err)
	}
	db.Close()
	if err := stop(); err != nil {
		t.Errorf("second serve returned %v", err)
	}
}

func TestParseRoles(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"collector,api,web", []string{"collector", "api", "web"}, ""},
		{" api , api", []string{"api"}, ""},
		{"api,bogus", nil, `unknown role "bogus"`},
		{",", nil, "no roles"},
	} {
		got, err := parseRoles(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseRoles(%q) err = %v, want containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseRoles(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestRunDispatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"help lists subcommands", []string{"help"}, "", "migrate"},
		{"unknown subcommand", []string{"frobnicate"}, `unknown subcommand "frobnicate"`, ""},
		{"bad flag of default serve", []string{"--roles", "bogus"}, `unknown role "bogus"`, ""},
		{"bad log format", []string{"migrate", "--log-format", "xml"}, "--log-format", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errOut)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("run(%q) err = %v, want %q", tc.args, err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("run(%q) stdout = %q, want containing %q", tc.args, out.String(), tc.wantOut)
			}
		})
	}
}
