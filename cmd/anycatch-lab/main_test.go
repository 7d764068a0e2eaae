package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		wantOut string
	}{
		{nil, "missing command", "usage: anycatch-lab COMMAND"},
		{[]string{"help"}, flag.ErrHelp.Error(), "withdraw  stop a site's anycast announcement"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, "commands:"},
		{[]string{"up", "--help"}, flag.ErrHelp.Error(), "--collector-port"},
		{[]string{"withdraw", "-h"}, flag.ErrHelp.Error(), "usage: anycatch-lab withdraw SITE"},
		{[]string{"truth", "--name", "Bad-Name"}, `open: instance name "Bad-Name": must be 1-8 of [a-z0-9], starting with a letter`, ""},
		{[]string{"delay"}, "delay: missing flags", "Internal: the TUN delay forwarder"},
		// A stray argument is refused before anything is torn down; a flag
		// after the site is read (the bad name fails, not the default one).
		{[]string{"down", "demo"}, `down: unexpected argument "demo" (it takes only flags)`, "usage: anycatch-lab down"},
		{[]string{"withdraw", "ams", "--name", "Bad-Name"}, `open: instance name "Bad-Name": must be 1-8 of [a-z0-9], starting with a letter`, ""},
		{[]string{"withdraw", "ams", "fra"}, "withdraw: need exactly one SITE", "usage: anycatch-lab withdraw SITE"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("got error %v, want %q", err, tt.wantErr)
			}
			if !strings.Contains(errb.String(), tt.wantOut) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantOut, errb.String())
			}
			if errors.Is(err, flag.ErrHelp) && out.Len() != 0 {
				t.Errorf("help wrote to stdout: %q", out.String())
			}
		})
	}
}
