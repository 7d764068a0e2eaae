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
