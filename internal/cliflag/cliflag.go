// Package cliflag parses a subcommand's command line with flags allowed
// before, between and after positional arguments.
//
// Go's flag package stops at the first non-flag argument, so
// "import atlas FILE --data-dir D" silently ignores --data-dir and a
// command then acts on a half-parsed command line (it opened the default
// data directory). Every subcommand of anycatch-server and anycatch-probe
// parses through Parse instead. It is stdlib only: the probe binary links
// it.
package cliflag

import (
	"flag"
	"fmt"
	"strings"
)

// Parse parses args into fs, accepting flags anywhere among the positional
// arguments, and returns the positional arguments in order. A lone "--"
// ends flag parsing: everything after it is positional, even if it starts
// with "-". Errors are fs.Parse's (flag.ErrHelp for -h).
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// fs.Parse consumed a "--" terminator when the argument just before
		// the rest is "--" and is not the value of a flag ("--name --").
		// The flag package treats the first "--" that is not a flag value as
		// the terminator, and a value "--" can only follow a flag needing
		// one, which it consumed as a pair: walk what was consumed to tell.
		if consumed := args[:len(args)-len(rest)]; endsWithTerminator(fs, consumed) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0]) // each round consumes at least one argument
		args = rest[1:]
	}
	return pos, nil
}

// endsWithTerminator reports whether the flag arguments consumed by one
// fs.Parse call ended with the "--" terminator rather than a flag value.
func endsWithTerminator(fs *flag.FlagSet, consumed []string) bool {
	for i := 0; i < len(consumed); i++ {
		a := consumed[i]
		if a == "--" {
			return i == len(consumed)-1
		}
		name := a
		for len(name) > 0 && name[0] == '-' {
			name = name[1:]
		}
		if j := strings.IndexByte(name, '='); j >= 0 {
			continue // -name=value is one argument
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		i++ // the next argument is this flag's value
	}
	return false
}

// Exactly checks that pos holds n positional arguments, naming what they
// are for (for example "TARGET CODE") in the error.
func Exactly(cmd string, pos []string, n int, what string) error {
	switch {
	case len(pos) == n:
		return nil
	case n == 0:
		return fmt.Errorf("%s: unexpected argument %q (it takes only flags)", cmd, pos[0])
	case len(pos) < n:
		return fmt.Errorf("%s: want %s, got %d argument(s)", cmd, what, len(pos))
	default:
		return fmt.Errorf("%s: want %s, got unexpected extra argument %q", cmd, what, pos[n])
	}
}
