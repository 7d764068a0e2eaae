package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/collector"
	cpg "github.com/anycatch/anycatch/collector/pgstore"
)

func TestTargetsSitesRules(t *testing.T) {
	e := newEnv(t, api.Config{})
	steps := []struct {
		name, method, path, body string
		want                     int
		param                    string
	}{
		{"create", "POST", "/api/v1/targets", `{"name":"b-root","addr4":"198.18.0.1","interval_sec":60,"specs":[{"kind":"identity"}]}`, 201, ""},
		{"create duplicate", "POST", "/api/v1/targets", `{"name":"b-root","addr4":"198.18.0.1"}`, 409, ""},
		{"create bad name", "POST", "/api/v1/targets", `{"name":"B root;--","addr4":"198.18.0.1"}`, 400, "name"},
		{"create no address", "POST", "/api/v1/targets", `{"name":"c-root"}`, 400, "addr4"},
		{"create bad interval", "POST", "/api/v1/targets", `{"name":"c-root","addr4":"198.18.0.1","interval_sec":1}`, 400, "interval_sec"},
		{"create unknown field", "POST", "/api/v1/targets", `{"name":"c-root","addr4":"198.18.0.1","colour":"red"}`, 400, "body"},
		{"get", "GET", "/api/v1/targets/b-root", "", 200, ""},
		{"update", "PATCH", "/api/v1/targets/b-root", `{"description":"B root","enabled":false}`, 200, ""},
		{"update bad addr6", "PATCH", "/api/v1/targets/b-root", `{"addr6":"198.18.0.1"}`, 400, "addr6"},
		{"put site", "PUT", "/api/v1/targets/b-root/sites/lax", `{"name":"Los Angeles","lat":34.05,"lon":-118.24,"unicast4":"198.51.100.1"}`, 200, ""},
		{"put site bad lat", "PUT", "/api/v1/targets/b-root/sites/lax", `{"lat":134}`, 400, "lat"},
		{"put site bad code", "PUT", "/api/v1/targets/b-root/sites/LAX!", `{}`, 400, "site"},
		{"list sites", "GET", "/api/v1/targets/b-root/sites", "", 200, ""},
		{"replace rules", "PUT", "/api/v1/targets/b-root/rules", `{"data":[{"source":"hostname_bind","match":"regex","pattern":"^b(?P<site>[a-z]{3})\\d"}]}`, 200, ""},
		{"replace rules bad regex", "PUT", "/api/v1/targets/b-root/rules", `{"data":[{"source":"any","match":"regex","pattern":"(("}]}`, 400, "data"},
		{"list rules", "GET", "/api/v1/targets/b-root/rules", "", 200, ""},
		{"delete site", "DELETE", "/api/v1/targets/b-root/sites/lax", "", 204, ""},
		{"delete site again", "DELETE", "/api/v1/targets/b-root/sites/lax", "", 404, ""},
		{"delete", "DELETE", "/api/v1/targets/b-root", "", 204, ""},
		{"get deleted", "GET", "/api/v1/targets/b-root", "", 404, ""},
	}
	for _, s := range steps {
		r := e.do(s.method, s.path, e.admin, s.body)
		if r.status != s.want {
			t.Fatalf("%s: got %d, want %d (%s)", s.name, r.status, s.want, r.body)
		}
		if s.param != "" {
			var ae apiError
			r.decode(t, &ae)
			if ae.Error.Param != s.param {
				t.Errorf("%s: param %q, want %q", s.name, ae.Error.Param, s.param)
			}
		}
		switch s.name {
		case "update":
			var tg api.Target
			r.decode(t, &tg)
			if tg.Description != "B root" || tg.Enabled || tg.IntervalSec != 60 || tg.Addr4 != "198.18.0.1" {
				t.Errorf("update: %+v", tg)
			}
		case "list rules":
			var l struct{ Data []catchment.Rule }
			r.decode(t, &l)
			if len(l.Data) != 1 || l.Data[0].Match != "regex" {
				t.Errorf("rules: %+v", l.Data)
			}
		case "list sites":
			var l struct{ Data []api.Site }
			r.decode(t, &l)
			if len(l.Data) != 1 || l.Data[0].Code != "lax" || *l.Data[0].Lat != 34.05 {
				t.Errorf("sites: %+v", l.Data)
			}
		}
	}
}

func TestKeysAndTokens(t *testing.T) {
	var e *env
	e = newEnv(t, api.Config{})
	// Rebuild the server with the collector's token service.
	svc := collector.Tokens{Store: cpg.New(e.db)}
	e.srv.Config.Handler = api.New(api.Config{Store: pgstore.New(e.db), Tokens: pgstore.Tokens{Service: svc}})

	r := e.do("POST", "/api/v1/admin/keys", e.admin, `{"name":"dash","scope":"read","rate_per_min":100}`)
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	var created api.APIKeyCreated
	r.decode(t, &created)
	if !regexp.MustCompile(`^ack_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$`).MatchString(created.Secret) || created.Key.Scope != "read" || *created.Key.RatePerMin != 100 {
		t.Fatalf("created: %+v", created)
	}
	if r := e.do("GET", "/api/v1/targets", created.Secret, ""); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "100" {
		t.Errorf("new key: %d, limit %q", r.status, r.header.Get("X-RateLimit-Limit"))
	}
	if r := e.do("POST", "/api/v1/admin/keys", e.admin, `{"scope":"root"}`); r.status != 400 {
		t.Errorf("bad scope: %d", r.status)
	}
	if r := e.do("DELETE", "/api/v1/admin/keys/x1", e.admin, ""); r.status != 400 {
		t.Errorf("bad id: %d", r.status)
	}
	if r := e.do("DELETE", "/api/v1/admin/keys/999999", e.admin, ""); r.status != 404 {
		t.Errorf("unknown id: %d", r.status)
	}

	r = e.do("POST", "/api/v1/admin/tokens", e.admin, `{"name":"lab","max_uses":5,"ttl":"72h"}`)
	if r.status != 201 {
		t.Fatalf("create token: %d %s", r.status, r.body)
	}
	var tok api.EnrollmentTokenCreated
	r.decode(t, &tok)
	if !strings.HasPrefix(tok.Secret, "act_") || tok.Token.MaxUses == nil || *tok.Token.MaxUses != 5 || tok.Token.ExpiresAt == nil {
		t.Errorf("token: %+v", tok)
	}
	if r := e.do("POST", "/api/v1/admin/tokens", e.admin, `{"ttl":"soon"}`); r.status != 400 {
		t.Errorf("bad ttl: %d", r.status)
	}
	var l struct{ Data []api.EnrollmentToken }
	e.do("GET", "/api/v1/admin/tokens", e.admin, "").decode(t, &l)
	if len(l.Data) != 1 || strings.Contains(mustJSON(l), tok.Secret) {
		t.Errorf("tokens: %+v", l.Data)
	}
	if r := e.do("DELETE", "/api/v1/admin/tokens/"+itoa(tok.Token.ID), e.admin, ""); r.status != 204 {
		t.Errorf("revoke token: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/api/v1/admin/tokens/424242", e.admin, ""); r.status != 404 {
		t.Errorf("revoke unknown token: %d %s", r.status, r.body)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestOpenAPIMatchesRoutes fails on a route missing from openapi.json or a
// documented operation no route serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var routed []string
	h := api.New(api.Config{Store: pgstore.Store{}})
	err := chi.Walk(api.Routes(h), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed = append(routed, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("openapi.json documents %s, which no route serves", d)
		}
	}
	if len(routed) < 25 {
		t.Errorf("only %d routes walked", len(routed))
	}
}
