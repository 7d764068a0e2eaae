package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/anycatch/anycatch"

// rule says which imports (by path prefix) a package's transitive
// dependencies must not contain, or, with onlyStd, that it may use the
// standard library and the listed module packages only.
type rule struct {
	pkg     string
	onlyStd bool     // standard library plus allow
	allow   []string // with onlyStd: module packages allowed
	deny    []string // forbidden import path prefixes
}

var (
	sqlAndHTTP = []string{"github.com/jackc/", "github.com/go-chi/", mod + "/store", "net/http", "database/sql"}
	serverOnly = []string{"github.com/jackc/", "github.com/go-chi/", "github.com/oschwald/", "github.com/prometheus/",
		mod + "/store", mod + "/api", mod + "/collector", mod + "/web", mod + "/geo", mod + "/migrations"}
)

var rules = []rule{
	{pkg: "measure", onlyStd: true},
	{pkg: "catchment", onlyStd: true, allow: []string{mod + "/measure"}},
	{pkg: "catchment/...", deny: sqlAndHTTP},
	{pkg: "migrations", onlyStd: true},
	{pkg: "web", onlyStd: true},
	{pkg: "probe/...", deny: serverOnly},
	{pkg: "cmd/anycatch-probe", deny: serverOnly},
	// The census: pure logic, and a site agent as lean as the probe.
	{pkg: "census", onlyStd: true, allow: []string{mod + "/measure"}},
	{pkg: "site", deny: serverOnly},
	{pkg: "cmd/anycatch-site", deny: serverOnly},
	{pkg: "geo", deny: append([]string{mod + "/"}, sqlAndHTTP...)},
	{pkg: "collector", deny: []string{"github.com/jackc/", "github.com/go-chi/", mod + "/store", mod + "/api", mod + "/web"}},
	{pkg: "api", deny: []string{"github.com/jackc/", mod + "/store", mod + "/collector", mod + "/web"}},
	{pkg: "atlas", deny: append([]string{mod + "/store", mod + "/collector", mod + "/api"}, sqlAndHTTP...)},
}

func TestDependencyDirection(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", mod+"/"+r.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
			}
			self := strings.TrimSuffix(mod+"/"+r.pkg, "/...")
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				path, std, _ := strings.Cut(line, " ")
				if strings.HasPrefix(path, self) {
					continue
				}
				if r.onlyStd && std != "true" && !contains(r.allow, path) {
					t.Errorf("%s imports %s: only the standard library%s is allowed", r.pkg, path, also(r.allow))
				}
				for _, d := range r.deny {
					if path == d || strings.HasPrefix(path, d) && (strings.HasSuffix(d, "/") || strings.HasPrefix(path, d+"/")) {
						t.Errorf("%s imports %s (forbidden: %s)", r.pkg, path, d)
					}
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func also(allow []string) string {
	if len(allow) == 0 {
		return ""
	}
	return " and " + strings.Join(allow, ", ")
}
