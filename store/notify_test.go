package store

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestListenTargetChanges: a target created, a site put and a rule change
// made through another handle on the same database (as the CLI would)
// each reach the listener; a change to an unrelated table does not.
func TestListenTargetChanges(t *testing.T) {
	db := openDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var calls atomic.Int64
	got := make(chan struct{}, 16)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- db.ListenTargetChanges(lctx, func() {
			calls.Add(1)
			select {
			case got <- struct{}{}:
			default:
			}
		})
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no notification within 5 s", what)
		}
	}
	wait("initial (re)connect call")

	tg := &Target{Name: "notify", Addr4: "198.51.100.53", IntervalSec: 60, Enabled: true}
	if err := db.CreateTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	wait("create target")
	if err := db.PutSite(ctx, tg.ID, Site{Code: "ams", Name: "Amsterdam"}); err != nil {
		t.Fatal(err)
	}
	wait("put site")
	if _, err := db.pool.Exec(ctx, `INSERT INTO site_rules (target_id, position, source, match, pattern, site) VALUES ($1, 0, 'any', 'exact', 'x', 'ams')`, tg.ID); err != nil {
		t.Fatal(err)
	}
	wait("insert rule")

	before := calls.Load()
	if _, err := db.pool.Exec(ctx, `UPDATE probes SET status = status`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != before {
		t.Errorf("an unrelated change notified %d times", n-before)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("listener returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("listener did not stop after cancel")
	}
}

func TestRecordBurst(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := &Target{Name: "burst", Addr4: "198.51.100.53", IntervalSec: 60, Enabled: true}
	if err := db.CreateTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	b := &Burst{At: at, TargetID: tg.ID, Measurement: "burst/identity/4", Trigger: "p1", From: "site:ams", To: "site:fra", Nudged: []string{"p2", "p3"}}
	if err := db.RecordBurst(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordBurst(ctx, &Burst{At: at, TargetID: tg.ID + 99, Measurement: "x", Trigger: "p"}); err == nil {
		t.Error("burst for a missing target stored")
	}
	got, err := db.Bursts(ctx, tg.ID, at.Add(-time.Second), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != b.ID || !got[0].At.Equal(at) || got[0].To != "site:fra" || len(got[0].Nudged) != 2 {
		t.Fatalf("bursts %+v, want the one recorded %+v", got, b)
	}
}

// TestListenProbeChanges: disabling a probe, re-enabling it and deleting
// it each notify its id (migration 008), whichever handle made the
// change; a heartbeat, an unchanged status and an imported probe's status
// do not.
func TestListenProbeChanges(t *testing.T) {
	db := openDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		`INSERT INTO probes (id, origin, public_key, version) VALUES ('p-n1', 'anycatch', '\x00', 't')`,
		`INSERT INTO probes (id, origin, version) VALUES ('atlas:9', 'atlas', 't')`,
	} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan string, 16)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go db.ListenChanges(lctx, ChangeHandlers{Probe: func(id string) { got <- id }})
	want := func(what, id string) {
		t.Helper()
		select {
		case g := <-got:
			if g != id {
				t.Fatalf("%s: notified %q, want %q", what, g, id)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no notification within 5 s", what)
		}
	}
	want("initial (re)connect call", "")
	for _, q := range []string{
		`UPDATE probes SET last_seen = now()`,
		`UPDATE probes SET status = status`,
		`UPDATE probes SET status = 'disabled' WHERE id = 'atlas:9'`,
	} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetProbeStatus(ctx, "p-n1", "disabled"); err != nil {
		t.Fatal(err)
	}
	want("disable", "p-n1") // and nothing before it
	if err := db.SetProbeStatus(ctx, "p-n1", "active"); err != nil {
		t.Fatal(err)
	}
	want("enable", "p-n1")
	if _, err := db.pool.Exec(ctx, `DELETE FROM probes WHERE id = 'p-n1'`); err != nil {
		t.Fatal(err)
	}
	want("delete", "p-n1")
}
