package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/store"
)

// TestMetricsNotPublic is the regression test for the /metrics half of
// finding 6: on the main listener /metrics answers 401 without a key and
// 403 with a read key, and serves the registry to an admin key; with
// --metrics-listen the same registry is served keyless on that separate
// address. Before, anyone reaching the main listener could read it.
func TestMetricsNotPublic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.Open(ctx, pgtest.NewURL(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st := pgstore.New(db)
	_, admin, err := api.CreateKey(ctx, st, "admin", api.ScopeAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, read, err := api.CreateKey(ctx, st, "read", api.ScopeRead, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	marker := prometheus.NewCounter(prometheus.CounterOpts{Name: "anycatch_test_marker_total", Help: "marker"})
	reg.MustRegister(marker)
	g, gctx := errgroup.WithContext(ctx)
	mux := http.NewServeMux()
	mm, err := mountMetrics(gctx, g, serveConfig{metricsListen: "127.0.0.1:0"}, db, mux, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	maddr := mm.addr
	t.Cleanup(func() { cancel(); g.Wait() })
	main := httptest.NewServer(mux)
	t.Cleanup(main.Close)

	get := func(url, key string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, url, key string
		want           int
	}{
		{"main, no key", main.URL + "/metrics", "", http.StatusUnauthorized},
		{"main, read key", main.URL + "/metrics", read, http.StatusForbidden},
		{"main, admin key", main.URL + "/metrics", admin, http.StatusOK},
		{"metrics listener, no key", "http://" + maddr.String() + "/metrics", "", http.StatusOK},
	} {
		code, body := get(tc.url, tc.key)
		if code != tc.want {
			t.Errorf("%s: %d, want %d (%.200s)", tc.name, code, tc.want, body)
		}
		if has := strings.Contains(body, "anycatch_test_marker_total"); has != (code == http.StatusOK) {
			t.Errorf("%s: %d and metrics in body = %v", tc.name, code, has)
		}
	}
	if !strings.HasPrefix(maddr.String(), "127.0.0.1:") {
		t.Errorf("metrics listener on %s", maddr)
	}
}
