package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
)

// EnvPrefix starts every anycatch environment variable.
const EnvPrefix = "ANYCATCH_"

// EnvName is the environment variable of the flag called name:
// ANYCATCH_ and the name in upper case with '-' as '_' (--min-interval-sec
// is ANYCATCH_MIN_INTERVAL_SEC). Every binary derives its variables this
// way, so no list of them can drift from the flags.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Env reads flags from the environment. Its zero value reads every flag of
// a set from its [EnvName].
type Env struct {
	// Names overrides the variable of some flags, by flag name
	// ("database-url": "DATABASE_URL"); an empty name keeps the flag out
	// of the environment (a one-shot --json, say).
	Names map[string]string
	// Aliases are older variable names still read, mapped to the flag
	// they set; each is deprecated: Warn is told when one is used. The
	// flag's own variable wins over an alias.
	Aliases map[string]string
	// Warn, when not nil, is told of each deprecated alias in use.
	Warn func(msg string)
}

// Var is the environment variable of flag name ("" for none).
func (e Env) Var(name string) string {
	if v, ok := e.Names[name]; ok {
		return v
	}
	return EnvName(name)
}

// aliasesOf returns the deprecated aliases of flag name, sorted.
func (e Env) aliasesOf(name string) []string {
	var out []string
	for old, f := range e.Aliases {
		if f == name {
			out = append(out, old)
		}
	}
	slices.Sort(out)
	return out
}

// Apply sets every flag of fs that the command line did not set from its
// variable (or else a deprecated alias), when that is not empty: the
// command line wins over the environment. Call it after parsing. An
// unusable value is an error naming the variable.
func (e Env) Apply(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := e.Var(f.Name)
		v := ""
		if name != "" {
			v = getenv(name)
		}
		if v == "" {
			for _, old := range e.aliasesOf(f.Name) {
				if v = getenv(old); v != "" {
					if e.Warn != nil {
						e.Warn(fmt.Sprintf("%s is deprecated: use %s", old, name))
					}
					name = old
					break
				}
			}
		}
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	})
	return errors.Join(errs...)
}

// Column is an extra column of [Env.Table].
type Column struct {
	Head string
	Cell func(f *flag.Flag) string // markdown
}

// Table renders the flags of fs as a markdown table for the docs: flag,
// environment variable (with deprecated aliases), default and meaning,
// then the extra columns. defaults replaces the default shown for flags
// whose default depends on the machine (stating the rule instead).
func (e Env) Table(fs *flag.FlagSet, defaults map[string]string, extra ...Column) string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |")
	for _, c := range extra {
		b.WriteString(" " + c.Head + " |")
	}
	b.WriteString("\n|---|---|---|---|")
	for range extra {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	fs.VisitAll(func(f *flag.Flag) {
		env := "—"
		if v := e.Var(f.Name); v != "" {
			env = "`" + v + "`"
		}
		if old := e.aliasesOf(f.Name); len(old) > 0 {
			env += " (deprecated: `" + strings.Join(old, "`, `") + "`)"
		}
		def := "`" + f.DefValue + "`"
		if f.DefValue == "" {
			def = "(empty)"
		}
		if d, ok := defaults[f.Name]; ok {
			def = d
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |", f.Name, env, def, strings.ReplaceAll(f.Usage, "|", "\\|"))
		for _, c := range extra {
			b.WriteString(" " + c.Cell(f) + " |")
		}
		b.WriteString("\n")
	})
	return b.String()
}
