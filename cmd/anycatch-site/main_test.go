package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--collector is required"},
		{[]string{"--collector", "http://127.0.0.1:1", "--max-pps", "20000"}, "--max-pps 20000: must be 1-10000"},
		{[]string{"--collector", "http://127.0.0.1:1", "extra"}, "unexpected arguments"},
		{[]string{"--collector", "ftp://x", "--state-dir", "STATE"}, "collector URL \"ftp://x\""},
		{[]string{"--collector", "http://127.0.0.1:1", "--state-dir", "STATE"}, "no site token given"},
	} {
		for i, a := range tc.args {
			if a == "STATE" {
				tc.args[i] = t.TempDir()
			}
		}
		var stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
}
