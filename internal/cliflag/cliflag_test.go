package cliflag

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		pos       []string
		dir       string
		strict    bool
		errIsHelp bool
	}{
		{name: "flags first", args: []string{"--data-dir", "D", "--strict", "f1", "f2"}, pos: []string{"f1", "f2"}, dir: "D", strict: true},
		// The command line: flags after the file were ignored.
		{name: "flags after positionals", args: []string{"f1", "--data-dir", "D", "f2", "--strict"}, pos: []string{"f1", "f2"}, dir: "D", strict: true},
		{name: "equals form", args: []string{"f1", "--data-dir=D"}, pos: []string{"f1"}, dir: "D"},
		{name: "stdin dash is positional", args: []string{"-", "--strict"}, pos: []string{"-"}, strict: true},
		{name: "terminator", args: []string{"f1", "--", "--strict", "-x"}, pos: []string{"f1", "--strict", "-x"}},
		{name: "terminator first", args: []string{"--", "f1"}, pos: []string{"f1"}},
		// "--" as a flag's value is a value, not the terminator.
		{name: "dashdash value", args: []string{"--data-dir", "--", "f1", "--strict"}, pos: []string{"f1"}, dir: "--", strict: true},
		{name: "none", args: nil, pos: nil},
		{name: "help after positional", args: []string{"f1", "-h"}, errIsHelp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			dir := fs.String("data-dir", "", "")
			strict := fs.Bool("strict", false, "")
			pos, err := Parse(fs, tc.args)
			if tc.errIsHelp {
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("err = %v, want flag.ErrHelp", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tc.pos) || *dir != tc.dir || *strict != tc.strict {
				t.Errorf("got pos %q dir %q strict %v, want %q %q %v", pos, *dir, *strict, tc.pos, tc.dir, tc.strict)
			}
		})
	}
}

func TestParseUnknownFlagAfterPositional(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Parse(fs, []string{"f1", "--nope"}); err == nil {
		t.Fatal("an unknown flag after a positional argument was accepted")
	}
}

func TestExactly(t *testing.T) {
	if err := Exactly("x", []string{"a"}, 1, "TARGET"); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		pos  []string
		n    int
		want string
	}{
		{[]string{"a"}, 0, `x: unexpected argument "a" (it takes only flags)`},
		{nil, 2, "x: want TARGET CODE, got 0 argument(s)"},
		{[]string{"a", "b", "c"}, 2, `x: want TARGET CODE, got unexpected extra argument "c"`},
	} {
		err := Exactly("x", tc.pos, tc.n, "TARGET CODE")
		if err == nil || err.Error() != tc.want {
			t.Errorf("Exactly(%q, %d) = %v, want %q", tc.pos, tc.n, err, tc.want)
		}
	}
}
