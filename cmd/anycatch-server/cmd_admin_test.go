package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestTargetCreateFromService(t *testing.T) {
	url := pgtest.NewURL(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	err := run(ctx, []string{"target", "create", "--database-url", url, "--service", "quad9", "--measure", "identity,ping", "--interval", "600"}, &out, &errb)
	if err != nil {
		t.Fatalf("target create: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "created target") {
		t.Errorf("output %q does not say the target was created", out.String())
	}
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tg, err := db.GetTarget(ctx, "quad9")
	if err != nil {
		t.Fatalf("get target: %v", err)
	}
	if tg.Addr4 != "9.9.9.9" || tg.Addr6 == "" || tg.IntervalSec != 600 {
		t.Errorf("target = %+v, want quad9's addresses and interval 600", tg)
	}
	if len(tg.Specs) != 2 || tg.Specs[0].Kind != measure.KindIdentity || tg.Specs[1].Kind != measure.KindPing {
		t.Errorf("specs = %+v, want identity and ping", tg.Specs)
	}
	rules, err := db.ListRules(ctx, tg.ID)
	if err != nil || len(rules) == 0 {
		t.Errorf("rules = %v, %v; want the shipped quad9 rules", rules, err)
	}

	errb.Reset()
	err = run(ctx, []string{"target", "create", "--database-url", url, "--name", "x", "--addr4", "198.51.100.53", "--measure", "smtp"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "unknown measurement kind") {
		t.Errorf("--measure smtp: err = %v, want unknown measurement kind", err)
	}
	err = run(ctx, []string{"target", "create", "--database-url", url, "--service", "no-such"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "have: k-root") {
		t.Errorf("--service no-such: err = %v, want the list of services", err)
	}
}

// TestAdminValidates: the admin CLI checks targets and sites with the
// same Validate as the API, so a bad value gets the API's words instead of
// a database CHECK violation, and nothing is written.
func TestAdminValidates(t *testing.T) {
	url := pgtest.NewURL(t)
	ctx := context.Background()
	run1 := func(args ...string) error {
		var out, errb bytes.Buffer
		return run(ctx, append(args[:2:2], append([]string{"--database-url", url}, args[2:]...)...), &out, &errb)
	}
	if err := run1("target", "create", "--name", "k-root", "--addr4", "198.51.100.53"); err != nil {
		t.Fatalf("valid target: %v", err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"interval below 10 s", []string{"target", "create", "--name", "a", "--addr4", "198.51.100.53", "--interval", "5"},
			"target create: interval_sec: want 10 to 86400 seconds"},
		{"bad name", []string{"target", "create", "--name", "K Root", "--addr4", "198.51.100.53"},
			"target create: name: target names are 1-63 characters"},
		{"v6 address as addr4", []string{"target", "create", "--name", "b", "--addr4", "2001:db8::53"},
			"target create: addr4: not an IPv4 address"},
		{"no address", []string{"target", "create", "--name", "c"}, "target create: addr4: a target needs addr4 or addr6"},
		{"update to a bad interval", []string{"target", "update", "k-root", "--interval", "100000"},
			"target update: interval_sec: want 10 to 86400 seconds"},
		{"bad site code", []string{"site", "create", "k-root", "AMS!"}, "site create: code: site codes are 1-32 characters"},
		{"latitude out of range", []string{"site", "create", "k-root", "ams", "--lat", "91", "--lon", "4"}, "site create: lat: want -90 to 90"},
		{"v4 unicast as unicast6", []string{"site", "update", "k-root", "ams", "--unicast6", "198.51.100.1"},
			"site update: unicast6: not an IPv6 address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run1(tc.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want an error starting %q", err, tc.want)
			}
		})
	}
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ts, err := db.ListTargets(ctx)
	if err != nil || len(ts) != 1 || ts[0].IntervalSec != 300 {
		t.Fatalf("targets after refused changes: %+v, %v; want k-root alone, unchanged", ts, err)
	}
	if ss, err := db.ListSites(ctx, ts[0].ID); err != nil || len(ss) != 0 {
		t.Fatalf("sites after refused changes: %+v, %v; want none", ss, err)
	}
}

// TestProbeDisableCommand: probe disable/enable set the probe's status;
// an unknown probe is an error naming it.
func TestProbeDisableCommand(t *testing.T) {
	url := pgtest.NewURL(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"migrate", "--database-url", url}, &out, &errb); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Pool().Exec(ctx, `INSERT INTO probes (id, public_key, version) VALUES ('p-cli', '\x00', 't')`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		action   string
		disabled bool
	}{{"disable", true}, {"enable", false}} {
		if err := run(ctx, []string{"probe", c.action, "p-cli", "--database-url", url}, &out, &errb); err != nil {
			t.Fatalf("probe %s: %v\n%s", c.action, err, errb.String())
		}
		if k, err := db.ProbeKey(ctx, "p-cli"); err != nil || k.Disabled != c.disabled {
			t.Errorf("after probe %s: %+v, %v", c.action, k, err)
		}
	}
	if err := run(ctx, []string{"probe", "disable", "p-nope", "--database-url", url}, &out, &errb); err == nil || !strings.Contains(err.Error(), "p-nope") {
		t.Errorf("unknown probe: err = %v, want an error naming it", err)
	}
}
