package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/internal/pgcluster"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/store"
)

// TestAdminCommandsCreateNoCluster: the command line ignored a
// trailing --data-dir, created a PostgreSQL cluster in the default data
// dir, then failed. Flags after positionals are now read, and an admin
// command given a data dir without a cluster refuses instead of creating
// one.
func TestAdminCommandsCreateNoCluster(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(file, []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"import", "atlas", "--target", "quad9", file, "--database-url=", "--data-dir", "DIR", "--strict"},
		{"import", "atlas", file, "--target", "quad9", "--database-url=", "--data-dir", "DIR"},
		{"target", "list", "--database-url=", "--data-dir", "DIR"},
		{"site", "list", "quad9", "--database-url=", "--data-dir", "DIR"},
		{"rule", "list", "--database-url=", "quad9", "--data-dir", "DIR"},
		{"key", "list", "--database-url=", "--data-dir", "DIR"},
		{"token", "list", "--database-url=", "--data-dir", "DIR"},
		{"reidentify", "--target", "quad9", "--database-url=", "--data-dir", "DIR"},
		{"rollup", "--since", "1h", "--database-url=", "--data-dir", "DIR"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			dir := t.TempDir()
			for i, a := range args {
				if a == "DIR" {
					args[i] = dir
				}
			}
			var out, errb bytes.Buffer
			err := run(ctx, args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), "no database in data dir "+dir) {
				t.Fatalf("run %q: err = %v, want no database in data dir %s", args, err, dir)
			}
			if _, err := os.Stat(filepath.Join(dir, "postgres")); !os.IsNotExist(err) {
				t.Errorf("run %q created %s/postgres (stat err %v)", args, dir, err)
			}
		})
	}
}

// TestRefusesHalfParsedCommandLine: a stray positional argument is named
// in the error before anything opens the database (the data dir given
// after it stays untouched, and the default one is not used).
func TestRefusesHalfParsedCommandLine(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "create", "extra", "--data-dir", "DIR"}, `token create: unexpected argument "extra"`},
		{[]string{"token", "revoke", "--data-dir", "DIR"}, "token revoke: want one token ID, got 0"},
		{[]string{"target", "list", "extra", "--data-dir", "DIR"}, "target list: want 0 argument(s), got 1"},
		{[]string{"migrate", "extra", "--data-dir", "DIR"}, `migrate: unexpected argument "extra"`},
		{[]string{"serve", "extra", "--data-dir", "DIR"}, `serve: unexpected argument "extra"`},
		{[]string{"seed", "extra", "--data-dir", "DIR"}, `seed: unexpected argument "extra"`},
		{[]string{"healthcheck", "extra", "--url", "http://127.0.0.1:1/"}, `healthcheck: unexpected argument "extra"`},
		{[]string{"rollup", "extra", "--since", "1h", "--data-dir", "DIR"}, "rollup: --since is required and takes no arguments"},
		{[]string{"import", "atlas", "--target", "t", "f", "--no-such-flag", "--data-dir", "DIR"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"import", "--target", "t", "atlas", "f", "--data-dir", "DIR"}, "import: name the source before the flags: import atlas --target t f"},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				if a == "DIR" {
					args[i] = dir
				}
			}
			var out, errb bytes.Buffer
			err := run(ctx, args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run %q: err = %v, want %q", args, err, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("run %q created the data dir %s", args, dir)
			}
		})
	}
}

// TestFlagsAfterPositionals: the admin and import commands act on flags
// given after their positional arguments.
func TestFlagsAfterPositionals(t *testing.T) {
	url := pgtest.NewURL(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	mustRun := func(args ...string) string {
		t.Helper()
		out.Reset()
		errb.Reset()
		if err := run(ctx, args, &out, &errb); err != nil {
			t.Fatalf("run %q: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	mustRun("target", "create", "--name", "t1", "--addr4", "198.51.100.53", "--database-url", url)
	mustRun("site", "create", "t1", "ams", "--name", "Amsterdam", "--database-url", url, "--lat", "52.3", "--lon", "4.9")
	if got := mustRun("site", "list", "t1", "--database-url", url); !strings.Contains(got, "Amsterdam") {
		t.Errorf("site list = %q, want the site created with flags after its positionals", got)
	}
	file := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(file, []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Before the fix --strict after FILE was read as a second file name.
	err := run(ctx, []string{"import", "atlas", "--target", "t1", file, "--database-url", url, "--strict", "--progress=false"}, &out, &errb)
	if err == nil || strings.Contains(err.Error(), "--strict") {
		t.Fatalf("import of an empty file: err = %v, want a failure about the file only", err)
	}
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.GetTarget(ctx, "t1"); err != nil {
		t.Fatalf("get target: %v", err)
	}
}

// TestImportTruncatedExitStatus: a truncated Atlas array makes the import
// fail (non-zero exit) saying "truncated", after storing what came before;
// --partial accepts it.
func TestImportTruncatedExitStatus(t *testing.T) {
	url := pgtest.NewURL(t)
	ctx := context.Background()
	good := `{"type":"dns","fw":5000,"prb_id":1,"msm_id":2,"timestamp":1700000000,"af":4,"dst_addr":"198.51.100.53","error":{"timeout":5000}}`
	file := filepath.Join(t.TempDir(), "cut.json")
	if err := os.WriteFile(file, []byte("["+good+","+good[:50]), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	args := []string{"import", "atlas", file, "--target", "t", "--create-target", "--addr", "198.51.100.53", "--database-url", url, "--progress=false"}
	err := run(ctx, args, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "--partial") {
		t.Fatalf("truncated import: err = %v, want a failure saying truncated and naming --partial\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "1 new") {
		t.Errorf("summary %q does not say the result before the break was stored", out.String())
	}
	out.Reset()
	if err := run(ctx, append(args, "--partial"), &out, &errb); err != nil {
		t.Errorf("with --partial: %v", err)
	}
}

// TestAdminAttachesToServingDataDir: with the check that refuses a data
// dir without a cluster, admin commands still attach to the cluster a
// running server keeps in its data dir, with flags after positionals
// (the new user's command line from the issue, against a running server).
func TestAdminAttachesToServingDataDir(t *testing.T) {
	if _, err := pgcluster.FindBinDir(); err != nil {
		t.Skip(err)
	}
	dataDir, err := os.MkdirTemp("", "anycatch-attach-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataDir) })
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, stop := startServe(t, dataDir)
	defer stop()
	ctx := context.Background()
	var out, errb bytes.Buffer
	for _, args := range [][]string{
		{"target", "create", "--name", "lab", "--addr4", "198.51.100.53", "--data-dir", dataDir, "--database-url="},
		{"site", "create", "lab", "ams", "--data-dir", dataDir, "--database-url=", "--name", "Amsterdam"},
	} {
		if err := run(ctx, args, &out, &errb); err != nil {
			t.Fatalf("run %q against the serving data dir: %v\n%s", args, err, errb.String())
		}
	}
	out.Reset()
	if err := run(ctx, []string{"site", "list", "lab", "--database-url=", "--data-dir", dataDir}, &out, &errb); err != nil || !strings.Contains(out.String(), "Amsterdam") {
		t.Errorf("site list: %v, output %q; want the site", err, out.String())
	}
}

// TestActionRefusesSiblingFlags: each action of an admin command has a
// flag set of its own, so a flag of another action is an error naming
// the action and the flag (it was silently accepted and ignored), before
// the database is opened.
func TestActionRefusesSiblingFlags(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"alert", "list", "--threshold", "5"}, "alert list: flag provided but not defined: -threshold"},
		{[]string{"alert", "rules", "--url", "http://x"}, "alert rules: flag provided but not defined: -url"},
		{[]string{"alert", "webhook-delete", "1", "--kind", "site_lost"}, "alert webhook-delete: flag provided but not defined: -kind"},
		{[]string{"target", "update", "t", "--service", "k-root"}, "target update: flag provided but not defined: -service"},
		{[]string{"target", "list", "--addr4", "198.51.100.1"}, "target list: flag provided but not defined: -addr4"},
		{[]string{"site", "list", "t", "--lat", "1"}, "site list: flag provided but not defined: -lat"},
		{[]string{"rule", "delete", "t", "1", "--pattern", "x"}, "rule delete: flag provided but not defined: -pattern"},
		{[]string{"key", "revoke", "1", "--scope", "admin"}, "key revoke: flag provided but not defined: -scope"},
		{[]string{"token", "list", "--uses", "3"}, "token list: flag provided but not defined: -uses"},
		{[]string{"token", "nope"}, `token: unknown subcommand "nope"`},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append(append([]string(nil), tc.args...), "--database-url=", "--data-dir", dir)
			var out, errb bytes.Buffer
			err := run(ctx, args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run %q: err = %v, want %q", args, err, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("run %q created the data dir %s", args, dir)
			}
		})
	}
	// The action's own flags are still accepted (the refusal is about the
	// flag set, not the flag).
	var out, errb bytes.Buffer
	err := run(ctx, []string{"alert", "list", "--status", "firing", "--target", "t", "--database-url=", "--data-dir", t.TempDir()}, &out, &errb)
	if err == nil || strings.Contains(err.Error(), "flag provided but not defined") {
		t.Fatalf("alert list with its own flags: err = %v, want only the missing database", err)
	}
}
