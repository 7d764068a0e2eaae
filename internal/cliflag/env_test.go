package cliflag

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"listen": "ANYCATCH_LISTEN", "min-interval-sec": "ANYCATCH_MIN_INTERVAL_SEC", "probe-cap-per-64": "ANYCATCH_PROBE_CAP_PER_64",
	} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func newSet() (*flag.FlagSet, *string, *int, *bool) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, fs.String("data-dir", "def", "where"), fs.Int("min-interval-sec", 60, "shortest"), fs.Bool("json", false, "as JSON")
}

func TestEnvApply(t *testing.T) {
	env := map[string]string{"ANYCATCH_DATA_DIR": "/env", "ANYCATCH_MIN_INTERVAL": "9", "ANYCATCH_JSON": "true"}
	var warned []string
	e := Env{Names: map[string]string{"json": ""}, Aliases: map[string]string{"ANYCATCH_MIN_INTERVAL": "min-interval-sec"},
		Warn: func(m string) { warned = append(warned, m) }}

	fs, dir, iv, js := newSet()
	if _, err := Parse(fs, []string{"--data-dir", "/flag"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *dir != "/flag" || *iv != 9 || *js {
		t.Errorf("got data-dir %q, min-interval-sec %d, json %v; want the flag's /flag, the alias's 9, json untouched", *dir, *iv, *js)
	}
	if len(warned) != 1 || warned[0] != "ANYCATCH_MIN_INTERVAL is deprecated: use ANYCATCH_MIN_INTERVAL_SEC" {
		t.Errorf("warnings %q", warned)
	}

	// The flag's own variable wins over the alias, silently.
	warned = nil
	env["ANYCATCH_MIN_INTERVAL_SEC"] = "11"
	fs, _, iv, _ = newSet()
	if err := e.Apply(fs, func(k string) string { return env[k] }); err != nil || *iv != 11 || warned != nil {
		t.Errorf("min-interval-sec %d, err %v, warnings %q; want 11 from ANYCATCH_MIN_INTERVAL_SEC, no warning", *iv, err, warned)
	}

	// A bad value names the variable.
	fs, _, _, _ = newSet()
	err := e.Apply(fs, func(k string) string { return map[string]string{"ANYCATCH_MIN_INTERVAL": "soon"}[k] })
	if err == nil || !strings.HasPrefix(err.Error(), "ANYCATCH_MIN_INTERVAL: ") {
		t.Errorf("err = %v, want one naming ANYCATCH_MIN_INTERVAL", err)
	}
}

func TestEnvTable(t *testing.T) {
	fs, _, _, _ := newSet()
	e := Env{Names: map[string]string{"json": ""}, Aliases: map[string]string{"ANYCATCH_MIN_INTERVAL": "min-interval-sec"}}
	got := e.Table(fs, map[string]string{"data-dir": "machine's"}, Column{Head: "key", Cell: func(f *flag.Flag) string { return f.Name }})
	want := "| flag | environment | default | meaning | key |\n|---|---|---|---|---|\n" +
		"| `--data-dir` | `ANYCATCH_DATA_DIR` | machine's | where | data-dir |\n" +
		"| `--json` | — | `false` | as JSON | json |\n" +
		"| `--min-interval-sec` | `ANYCATCH_MIN_INTERVAL_SEC` (deprecated: `ANYCATCH_MIN_INTERVAL`) | `60` | shortest | min-interval-sec |\n"
	if got != want {
		t.Errorf("Table:\n%s\nwant:\n%s", got, want)
	}
}
