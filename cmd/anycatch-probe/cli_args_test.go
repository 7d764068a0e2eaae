package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagsAfterArguments: every subcommand reads flags given after a
// positional argument or refuses the argument; none acts on a half-parsed
// command line.
func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		// status used to ignore everything after a stray argument and
		// read the default state dir.
		{"status stray argument", []string{"status", "extra", "--state-dir", stateDir}, exitUsage, `unexpected argument "extra"`},
		{"status flag after flag", []string{"status", "--json", "--state-dir", stateDir}, exitCannotRun, "no status in " + stateDir},
		{"run stray argument", []string{"run", "extra", "--collector", "http://127.0.0.1:1", "--state-dir", stateDir}, exitUsage, `unexpected arguments: ["extra"]`},
		{"dns unknown flag after target", []string{"dns", "127.0.0.1", "--no-such"}, exitUsage, "flag provided but not defined: -no-such"},
		{"version argument", []string{"version", "x"}, exitUsage, "version takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}
