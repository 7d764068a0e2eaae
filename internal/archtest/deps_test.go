package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/anycatch/anycatch"

// rule says what a package (or, with "/...", each package under it) may
// depend on, transitively: with onlyStd the standard library and allow
// only; otherwise anything but the deny prefixes. A deny entry ending in
// "/" matches every path under it; others match the path and its
// sub-packages. directDeny lists what the package must not import itself
// (SQL outside store). wiring marks packages that may depend on anything
// (mains, adapters, test infrastructure): they are listed so that
// TestEveryPackageHasARule knows they were considered.
type rule struct {
	pkg        string
	onlyStd    bool
	allow      []string
	deny       []string
	directDeny []string
	wiring     bool
}

var (
	sql        = []string{"github.com/jackc/", "database/sql"}
	sqlAndHTTP = append([]string{"github.com/go-chi/", mod + "/store", "net/http"}, sql...)
	// serverOnly is what the probe binary (volunteers' small machines)
	// must never link.
	serverOnly = []string{"github.com/jackc/", "github.com/go-chi/", "github.com/oschwald/", "github.com/prometheus/",
		mod + "/store", mod + "/api", mod + "/collector", mod + "/web", mod + "/geo", mod + "/migrations"}
	labDeny = slices.DeleteFunc(slices.Clone(serverOnly), func(p string) bool { return p == "github.com/oschwald/" })
)

// rules is the one dependency policy of the module (STYLE.md, "Layout
// and dependency direction"). Every package of the module matches at
// least one rule.
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
	{pkg: "geo/borders", onlyStd: true},
	// (prometheus' collectors link database/sql: the collector's own SQL is
	// ruled out by directDeny.)
	{pkg: "collector", deny: []string{mod + "/store", mod + "/api", mod + "/web", "github.com/go-chi/", "github.com/jackc/"}, directDeny: sql},
	{pkg: "collector/...", deny: []string{mod + "/api", mod + "/web"}, directDeny: sql},
	{pkg: "api", deny: append([]string{mod + "/store", mod + "/collector", mod + "/web", mod + "/geo", "github.com/oschwald/"}, sql...)},
	{pkg: "api/...", deny: []string{mod + "/web"}, directDeny: sql},
	{pkg: "atlas", deny: append([]string{mod + "/collector", mod + "/api", mod + "/geo"}, sqlAndHTTP...)},
	{pkg: "atlas/...", deny: []string{mod + "/collector", mod + "/api", mod + "/web", "github.com/go-chi/"}, directDeny: sql},
	// The lab drives the server through its binary and API; it writes
	// GeoIP databases of its own networks (maxmind's mmdb writer links
	// oschwald's reader), which is all it shares with the server side.
	{pkg: "lab/...", deny: labDeny},
	{pkg: "cmd/anycatch-lab", deny: labDeny},
	{pkg: "store", wiring: true},
	{pkg: "cmd/anycatch-server", wiring: true, directDeny: sql},
	{pkg: "cmd/anycatch-loadgen", wiring: true}, // a benchmark tool: measures raw COPY itself
	{pkg: "e2e", wiring: true, directDeny: sql},
	{pkg: "internal/...", wiring: true}, // test infrastructure
	// Routing events from the sites' BGP speakers (BMP via gobgp's packet
	// parsers): pure logic, lean enough for the site agent.
	{pkg: "routing", deny: append(slices.Clone(serverOnly), "net/http", "database/sql")},
	{pkg: "alert", onlyStd: true, allow: []string{mod + "/measure", mod + "/catchment"}},
	{pkg: "alert/webhook", onlyStd: true, allow: []string{mod + "/measure"}}, // measure.SpecialRange: one table of special ranges
	{pkg: "alert/pgstore", deny: []string{mod + "/api", mod + "/collector", mod + "/web", "github.com/go-chi/"}, directDeny: sql},
	{pkg: "alert/service", deny: []string{"github.com/jackc/", "github.com/go-chi/", mod + "/store", mod + "/api", mod + "/collector", mod + "/web"}, directDeny: sql},
}

// TestDependencyDirection checks every rule with go list -deps.
func TestDependencyDirection(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			if !r.wiring {
				checkDeps(t, r)
			}
			if len(r.directDeny) > 0 {
				checkImports(t, r)
			}
		})
	}
}

func checkDeps(t *testing.T, r rule) {
	out := goList(t, "-deps", "-f", "{{.ImportPath}} {{.Standard}}", mod+"/"+r.pkg)
	self := strings.TrimSuffix(mod+"/"+r.pkg, "/...")
	for _, line := range out {
		path, std, _ := strings.Cut(line, " ")
		if path == self || strings.HasPrefix(path, self+"/") {
			continue
		}
		if r.onlyStd && std != "true" && !slices.Contains(r.allow, path) {
			t.Errorf("%s imports %s: only the standard library%s is allowed", r.pkg, path, also(r.allow))
		}
		if d, ok := denied(path, r.deny); ok {
			t.Errorf("%s imports %s (forbidden: %s)", r.pkg, path, d)
		}
	}
}

// checkImports checks the packages' own imports: SQL is store's.
func checkImports(t *testing.T, r rule) {
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"/"+r.pkg) {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if d, ok := denied(imp, r.directDeny); ok {
				t.Errorf("%s imports %s itself (forbidden: %s; only store speaks SQL)", fields[0], imp, d)
			}
		}
	}
}

// TestEveryPackageHasARule: a new package (atlas/parse, probe/foo, ...)
// is covered by a rule, or this fails until it gets one.
func TestEveryPackageHasARule(t *testing.T) {
	for _, path := range goList(t, mod+"/...") {
		rel := strings.TrimPrefix(strings.TrimPrefix(path, mod), "/")
		if rel == "internal/archtest" || rel == "" {
			continue
		}
		if !slices.ContainsFunc(rules, func(r rule) bool { return matches(r.pkg, rel) }) {
			t.Errorf("package %s matches no rule in internal/archtest: add one (what it may import)", rel)
		}
	}
}

func TestDenied(t *testing.T) {
	tests := []struct {
		path string
		deny []string
		want bool
	}{
		{"github.com/jackc/pgx/v5", []string{"github.com/jackc/"}, true},
		{mod + "/store", []string{mod + "/store"}, true},
		{mod + "/store/x", []string{mod + "/store"}, true},
		{mod + "/storefront", []string{mod + "/store"}, false},
		{"net/http", []string{"net/http"}, true},
		{"net/http/httptrace", []string{"net/http"}, true},
		{"net/netip", []string{"net/http"}, false},
	}
	for _, tc := range tests {
		if _, got := denied(tc.path, tc.deny); got != tc.want {
			t.Errorf("denied(%s, %v) = %v, want %v", tc.path, tc.deny, got, tc.want)
		}
	}
	if !matches("atlas/...", "atlas/importer") || !matches("atlas/...", "atlas") || matches("atlas", "atlas/importer") || matches("api/...", "apix") {
		t.Error("matches: wrong pattern semantics")
	}
}

func denied(path string, deny []string) (string, bool) {
	for _, d := range deny {
		if path == d || strings.HasPrefix(path, d) && (strings.HasSuffix(d, "/") || strings.HasPrefix(path, d+"/")) {
			return d, true
		}
	}
	return "", false
}

// matches tells whether package rel (relative to the module) is pkg or,
// for "x/...", x or under it.
func matches(pkg, rel string) bool {
	if base, ok := strings.CutSuffix(pkg, "/..."); ok {
		return rel == base || strings.HasPrefix(rel, base+"/")
	}
	return rel == pkg
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func also(allow []string) string {
	if len(allow) == 0 {
		return ""
	}
	return " and " + strings.Join(allow, ", ")
}
