package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/anycatch/anycatch/api"
)

// TestDisableProbe: an admin disables and re-enables a probe with PATCH
// /probes/{probe}; the store's status follows (the collector learns of it
// through the database's notification, see collector TestDisableViaDatabase)
// and the probe's published record says so. Read keys cannot, unknown
// probes are 404, a body without "enabled" is 400.
func TestDisableProbe(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	ctx := context.Background()
	if r := e.do("PATCH", "/api/v1/probes/p-1", e.read, `{"enabled":false}`); r.status != http.StatusForbidden {
		t.Errorf("read key: %d %s, want 403", r.status, r.body)
	}
	var p api.Probe
	r := e.do("PATCH", "/api/v1/probes/p-1", e.admin, `{"enabled":false}`)
	if r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	r.decode(t, &p)
	if p.ID != "p-1" || p.Enabled {
		t.Errorf("after disable: %+v", p)
	}
	if k, err := e.db.ProbeKey(ctx, "p-1"); err != nil || !k.Disabled {
		t.Errorf("stored: %+v, %v; want disabled", k, err)
	}
	if r := e.do("PATCH", "/api/v1/probes/p-1", e.admin, `{"enabled":true}`); r.status != http.StatusOK {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	if k, err := e.db.ProbeKey(ctx, "p-1"); err != nil || k.Disabled {
		t.Errorf("stored: %+v, %v; want enabled", k, err)
	}
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/api/v1/probes/p-nope", `{"enabled":false}`, http.StatusNotFound},
		{"/api/v1/probes/p-1", `{}`, http.StatusBadRequest},
		{"/api/v1/probes/p-1", `{"enabled":false,"name":"x"}`, http.StatusBadRequest},
	} {
		if r := e.do("PATCH", c.path, e.admin, c.body); r.status != c.want {
			t.Errorf("PATCH %s %s: %d %s, want %d", c.path, c.body, r.status, r.body, c.want)
		}
	}
}
