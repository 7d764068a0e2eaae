package cliflag

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// FuzzParse: any command line either fails to parse or yields positional
// arguments that all appear in it, in order; it never panics or loops.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"f1 --data-dir D --strict",             // flags after a positional
		"--data-dir -- f1 -- --strict",         // "--" as a value, then the terminator
		"- --strict",                           // stdin dash
		"f1 -h",                                // help after a positional
		"--strict=false f1 --data-dir=x f2 --", // equals forms and a trailing terminator
		"--nope f1",                            // unknown flag
		"f1 --data-dir",                        // flag missing its value
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("data-dir", "", "")
		fs.Bool("strict", false, "")
		pos, err := Parse(fs, args)
		if err != nil {
			return
		}
		i := 0
		for _, p := range pos {
			for i < len(args) && args[i] != p {
				i++
			}
			if i == len(args) {
				t.Fatalf("positional %q of %q is not in the command line in order (got %q)", p, args, pos)
			}
			i++
		}
	})
}
