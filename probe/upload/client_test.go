package upload_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/upload"
	"github.com/anycatch/anycatch/probe/upload/uploadtest"
)

func enrolled(t *testing.T, fc *uploadtest.Collector) *upload.Client {
	t.Helper()
	id, err := upload.NewIdentity(fc.URL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := upload.New(fc.URL, id, upload.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Enroll(context.Background(), measure.EnrollRequest{Token: fc.Token, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	id.Probe = resp.Probe
	return c
}

func result(i int) []byte {
	med := float64(i)
	r := measure.Result{V: 1, ID: measure.NewUUIDv7(time.Now()), Measurement: "m", Kind: measure.KindPing,
		Time: time.Now().UTC(), Dst: "198.51.100.1", AF: 4, Ping: &measure.PingResult{Mode: "raw", Sent: 1, Received: 1, Median: &med}}
	b, _ := json.Marshal(r)
	return b
}

func TestProtocolRoundTrip(t *testing.T) {
	ctx := context.Background()
	fc := uploadtest.New(t)
	fc.SetSchedule(measure.Schedule{Version: "v1", RefreshSec: 60, Measurements: []measure.Measurement{{ID: "a", Address: "198.51.100.1", IntervalSec: 60, Spec: measure.Spec{Kind: measure.KindPing}}}})
	c := enrolled(t, fc)

	s, etag, err := c.FetchSchedule(ctx, "")
	if err != nil || s.Version != "v1" || etag != `"v1"` || len(s.Measurements) != 1 {
		t.Fatalf("first fetch: schedule %+v etag %q err %v", s, etag, err)
	}
	if _, _, err := c.FetchSchedule(ctx, etag); !errors.Is(err, upload.ErrNotModified) {
		t.Fatalf("revalidation: got %v, want ErrNotModified", err)
	}
	if err := c.Heartbeat(ctx, measure.Heartbeat{Version: "test", SpoolDepth: 3}); err != nil {
		t.Fatal(err)
	}
	if hb := fc.Heartbeats(); len(hb) != 1 || hb[0].SpoolDepth != 3 {
		t.Fatalf("heartbeats %+v", hb)
	}

	var lines [][]byte
	for i := range 100 { // > GzipMin, so gzipped
		lines = append(lines, result(i))
	}
	lines = append(lines, []byte(`{"v":1,"kind":"nonsense"}`))
	ur, err := c.Upload(ctx, lines)
	if err != nil {
		t.Fatal(err)
	}
	if ur.Accepted != 100 || ur.Rejected != 1 || len(ur.Lines) != 101 || ur.Lines[100].Verdict != measure.Rejected {
		t.Fatalf("upload answer: accepted %d rejected %d lines %d", ur.Accepted, ur.Rejected, len(ur.Lines))
	}
	ur, err = c.Upload(ctx, lines[:2])
	if err != nil || ur.Duplicate != 2 {
		t.Fatalf("re-upload: %+v %v, want 2 duplicates", ur, err)
	}
}

func TestStatusErrors(t *testing.T) {
	ctx := context.Background()
	fc := uploadtest.New(t)
	c := enrolled(t, fc)
	fc.FailNext("results", http.StatusTooManyRequests, "7", 1)
	_, err := c.Upload(ctx, [][]byte{result(1)})
	if d, ok := upload.RetryAfter(err); !ok || d != 7*time.Second || !upload.Retryable(err) {
		t.Fatalf("429: got %v (retry after %v %v), want retryable with 7s", err, d, ok)
	}
	fc.FailNext("results", http.StatusBadRequest, "", 1)
	if _, err := c.Upload(ctx, [][]byte{result(1)}); upload.Retryable(err) {
		t.Fatalf("400 should not be retryable: %v", err)
	}

	// A different key than the enrolled one must be refused by the collector.
	other, _ := upload.NewIdentity(fc.URL, time.Now())
	other.Probe = "p1"
	bad, _ := upload.New(fc.URL, other, upload.Options{})
	var se *upload.StatusError
	if err := bad.Heartbeat(ctx, measure.Heartbeat{}); !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged heartbeat: got %v, want 401", err)
	}
	// The token is one-time.
	if _, err := bad.Enroll(ctx, measure.EnrollRequest{Token: "enroll-me"}); !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Fatalf("second enrollment: got %v, want 401", err)
	}
	// Network failure is retryable.
	fc.SetDown(true)
	if err := c.Heartbeat(ctx, measure.Heartbeat{}); err == nil || !upload.Retryable(err) {
		t.Fatalf("collector down: got %v, want retryable error", err)
	}
}

func TestIdentityFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.json")
	id, _ := upload.NewIdentity("https://collector.example", time.Now())
	id.Probe = "p42"
	if err := id.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := upload.LoadIdentity(path)
	if err != nil || got.Probe != "p42" || !got.PrivateKey.Equal(id.PrivateKey) {
		t.Fatalf("reload: %+v %v", got, err)
	}
	b, _ := os.ReadFile(path)
	var m map[string]any
	json.Unmarshal(b, &m)
	m["public_key"] = strings.Repeat("A", 43) + "="
	b, _ = json.Marshal(m)
	os.WriteFile(path, b, 0o600)
	if _, err := upload.LoadIdentity(path); err == nil {
		t.Fatal("identity with mismatched public key loaded, want error")
	}
	if _, err := upload.LoadIdentity(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing identity: got %v, want ErrNotExist", err)
	}
}
