package pgstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/upload"
	"github.com/anycatch/anycatch/store"
)

// TestKeyRoles: a census site agent's key is no probe credential. With a
// valid signature it is refused (403) on every probe endpoint — schedule,
// results, heartbeat, live channel — exactly as a volunteer probe's key is
// refused on the census endpoints, and nothing it sent is stored. The
// role comes from the probes row's origin, so agents enrolled before keys
// carried a role keep theirs.
func TestKeyRoles(t *testing.T) {
	r := newRig(t, pgtest.NewURL(t), func(c *collector.Config) { c.Census = pgstore.New(c.Store.(pgstore.Adapter).DB) })
	ctx := context.Background()
	if err := r.db.PutSite(ctx, r.tg.ID, store.Site{Code: "ams"}); err != nil {
		t.Fatal(err)
	}
	if err := r.db.SetCensusConfig(ctx, store.CensusConfig{TargetID: r.tg.ID, Enabled: true, MaxPPS: 200}); err != nil {
		t.Fatal(err)
	}
	if err := r.db.IssueSiteToken(ctx, r.tg.ID, "ams", sha256.Sum256([]byte("acs_ams"))); err != nil {
		t.Fatal(err)
	}
	site := enrollSite(t, r, "ams", "acs_ams")
	vol, err := upload.NewIdentity(r.srv.URL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	volc, _ := upload.New(r.srv.URL, vol, upload.Options{})
	var er measure.EnrollResponse
	if err := volc.Call(ctx, "enroll", "POST", measure.PathEnroll, false,
		measure.EnrollRequest{Token: r.token(t, collector.TokenOptions{}), PublicKey: vol.PublicKey(), Version: "it"}, nil, &er); err != nil {
		t.Fatal(err)
	}
	vol.Probe = er.Probe

	// The volunteer's key works where it should, so the refusals below
	// are about the role, not a broken client.
	var sched measure.Schedule
	if err := volc.Call(ctx, "schedule", "GET", measure.PathSchedule, true, nil, nil, &sched); err != nil {
		t.Fatalf("volunteer schedule: %v", err)
	}
	var sch measure.CensusSchedule
	if err := site.Call(ctx, "census", "GET", measure.PathCensus, true, nil, nil, &sch); err != nil {
		t.Fatalf("site census schedule: %v", err)
	}

	res := ident(1, measure.Identity{HostnameBind: "ns1.ams.k.example"})
	res.Time = time.Now().UTC()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	line := append(b, '\n')
	for _, c := range []struct {
		name         string
		cl           *upload.Client
		method, path string
		body         any
		raw          []byte
	}{
		{"site schedule", site, "GET", measure.PathSchedule, nil, nil},
		{"site results", site, "POST", measure.PathResults, nil, line},
		{"site heartbeat", site, "POST", measure.PathHeartbeat, measure.Heartbeat{Version: "x", Location: &measure.Location{Lat: 1, Lon: 2}}, nil},
		{"probe census schedule", volc, "GET", measure.PathCensus, nil, nil},
		{"probe census replies", volc, "POST", measure.PathCensusReplies, nil, []byte("{}\n")},
	} {
		err := c.cl.Call(ctx, c.name, c.method, c.path, true, c.body, c.raw, nil)
		if !isStatus(err, http.StatusForbidden) {
			t.Errorf("%s: got %v, want 403", c.name, err)
		}
	}
	if _, err := site.DialLive(ctx); !isStatus(err, http.StatusForbidden) {
		t.Errorf("site live channel: got %v, want 403", err)
	}
	if n := len(r.c.LiveProbes()); n != 0 {
		t.Errorf("%d live channels after the site agent's attempt", n)
	}
	if n := count(t, r.db, `SELECT count(*) FROM results`); n != 0 {
		t.Errorf("%d results stored from a site agent's key", n)
	}
	if n := count(t, r.db, `SELECT count(*) FROM probes WHERE origin = 'site' AND declared_lat IS NOT NULL`); n != 0 {
		t.Errorf("a site agent's heartbeat set its location")
	}
}
