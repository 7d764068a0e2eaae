package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/store"
)

func TestRollupCommand(t *testing.T) {
	url := pgtest.NewURL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Seed(ctx, store.SeedOptions{Probes: 20, Targets: 1, Days: 2, Interval: time.Hour, RawDays: 1}); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	for _, args := range [][]string{
		{"rollup", "--database-url", url, "--since", "30h"},
		{"rollup", "--database-url", url, "--since", "50h", "--blocks-only"},
	} {
		out.Reset()
		if err := run(ctx, args, &out, &errb); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errb.String())
		}
		if !strings.HasPrefix(out.String(), "rebuilt ") {
			t.Errorf("%v: output %q", args, out.String())
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rollup", "--database-url", url}, "--since is required"},
		{[]string{"rollup", "--database-url", url, "--since", "yesterday"}, "neither a duration"},
		{[]string{"rollup", "--database-url", url, "--since", "1h", "--until", "2h"}, "is not before"},
	} {
		err := run(ctx, tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}
