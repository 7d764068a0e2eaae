package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/internal/pgtest"
)

func TestAlertCommands(t *testing.T) {
	url := pgtest.NewURL(t)
	ctx := context.Background()
	var got []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("X-Anycatch-Event"))
		w.WriteHeader(http.StatusTeapot)
	}))
	defer rcv.Close()
	cmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append(args, "--database-url", url), &out, &errb)
		return out.String() + errb.String(), err
	}
	if out, err := cmd("target", "create", "--name", "lab", "--addr4", "198.18.53.53"); err != nil {
		t.Fatalf("target create: %v\n%s", err, out)
	}
	steps := []struct {
		args    []string
		wantErr string
		wantOut string
	}{
		{[]string{"alert", "rule-create", "lab", "--kind", "share_change", "--threshold", "20", "--window", "10m", "--for", "1m"}, "", "created alert rule 1 (share_change on lab)"},
		{[]string{"alert", "rule-create", "lab", "--kind", "share_change"}, "threshold 0", ""},
		{[]string{"alert", "rule-create", "nope", "--kind", "site_lost"}, "not found", ""},
		{[]string{"alert", "rule-create", "lab", "--kind", "region_flap", "--region", "continent", "--threshold", "2"}, "", "created alert rule 2 (region_flap on lab)"},
		{[]string{"alert", "rule-create", "lab", "--kind", "region_flap", "--region", "city"}, `region "city"`, ""},
		{[]string{"alert", "rule-create", "lab", "--kind", "speed_of_light", "--threshold", "0", "--min-probes", "1"}, "", "created alert rule 3 (speed_of_light on lab)"},
		{[]string{"alert", "rule-create", "lab", "--kind", "inflation", "--threshold", "5", "--window", "5m"}, "want at least 600", ""},
		{[]string{"alert", "rules", "--target", "lab"}, "", "region_flap(continent)"},
		{[]string{"alert", "rules", "--target", "lab"}, "", "600s"},
		{[]string{"alert", "webhook-create", "--url", rcv.URL, "--allow-private", "--name", "ops"}, "", "shown only once"},
		{[]string{"alert", "webhook-create", "--url", "gopher://x"}, "http or https", ""},
		{[]string{"alert", "webhooks"}, "", rcv.URL},
		{[]string{"alert", "webhook-test", "1"}, "", "418"},
		{[]string{"alert", "deliveries", "1"}, "", "not retried"},
		{[]string{"alert", "deliveries", "x"}, "not an id", ""},
		{[]string{"alert", "list", "--status", "firing"}, "", "SUMMARY"},
		{[]string{"alert", "list", "--status", "sad"}, "want firing or resolved", ""},
		{[]string{"alert", "rule-disable", "1"}, "", ""},
		{[]string{"alert", "rules"}, "", "false"},
		{[]string{"alert", "rule-enable", "9"}, "not found", ""},
		{[]string{"alert", "webhook-disable", "1"}, "", ""},
		{[]string{"alert", "rule-delete", "1"}, "", ""},
		{[]string{"alert", "rule-delete", "1"}, "not found", ""},
		{[]string{"alert", "webhook-delete", "1"}, "", ""},
	}
	for _, s := range steps {
		out, err := cmd(s.args...)
		if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Errorf("%v: err %v, want %q", s.args, err, s.wantErr)
		}
		if !strings.Contains(out, s.wantOut) {
			t.Errorf("%v: output %q, want it to contain %q", s.args, out, s.wantOut)
		}
	}
	if len(got) != 1 || got[0] != "test" {
		t.Errorf("receiver got %v, want one test notification", got)
	}
}
