package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/catchment/rulesets"
)

func TestCmdRulesEgress(t *testing.T) {
	p := filepath.Join(t.TempDir(), "google.txt")
	os.WriteFile(p, []byte("64.233.162.0/24 gru\n\"iad 64.233.168.0/24\"\n74.125.17.0/24 bru\n74.125.17.0/24 fra\n"), 0o644)
	var out, errb bytes.Buffer
	if err := cmdRules(context.Background(), []string{"egress", "--note", "FAQ, 2026-12-03", p}, &out, &errb); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	svcs, err := rulesets.Parse(out.Bytes())
	if err != nil {
		t.Fatalf("output does not load: %v\n%s", err, out.String())
	}
	if len(svcs) != 1 || svcs[0].Name != "google-dns" || len(svcs[0].Rules) != 2 || svcs[0].Rules[1].Site != "iad" {
		t.Errorf("got %+v", svcs)
	}
	if !strings.Contains(errb.String(), "74.125.17.0/24 is listed for two sites") {
		t.Errorf("stderr %q does not report the conflict", errb.String())
	}
	if err := cmdRules(context.Background(), []string{"egress", p}, &out, &errb); err == nil {
		t.Error("no --note: no error")
	}
}
