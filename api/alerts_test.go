package api_test

import (
	"strings"
	"testing"

	"github.com/anycatch/anycatch/alert/pgstore"
	"github.com/anycatch/anycatch/alert/service"
	"github.com/anycatch/anycatch/api"
)

// lateAlerts lets the test wire the service once the env's database
// exists.
type lateAlerts struct{ *service.Service }

func TestAlertEndpoints(t *testing.T) {
	la := &lateAlerts{}
	e := newEnv(t, api.Config{Alerts: la})
	la.Service = service.New(service.Config{Store: pgstore.Store{DB: e.db}})
	e.seed()
	steps := []struct {
		name, method, path, key, body string
		want                          int
		contains                      string
	}{
		{"rule", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"site_lost","af":4}`, 201, `"min_probes":2`},
		{"rule by a reader", "POST", "/api/v1/alerts/rules", e.read, `{"target":"k-root","kind":"site_lost"}`, 403, "forbidden"},
		{"rule without target", "POST", "/api/v1/alerts/rules", e.admin, `{"kind":"site_lost"}`, 400, "target"},
		{"rule for a missing target", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"nope","kind":"site_lost"}`, 404, "nope"},
		{"rule of an unknown kind", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"vibes"}`, 400, "unknown kind"},
		{"rule with unknown field", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"site_lost","colour":1}`, 400, "body"},
		{"region_flap rule", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"region_flap","region":"asn","threshold":2}`, 201, `"region":"asn"`},
		{"region_flap without region", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"region_flap"}`, 400, "region"},
		{"speed_of_light rule", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"speed_of_light","af":6}`, 201, `"window_sec":3600`},
		{"inflation rule with a short window", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"inflation","threshold":3,"window_sec":60}`, 400, "at least 600"},
		{"rule name with NUL", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"site_lost","name":"a\u0000b"}`, 400, `"param":"name"`},
		{"rule target with NUL", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-\u0000root","kind":"site_lost"}`, 400, `"param":"target"`},
		{"rule region with a control char", "POST", "/api/v1/alerts/rules", e.admin, `{"target":"k-root","kind":"region_flap","region":"asn\u0007","threshold":2}`, 400, `"param":"region"`},
		{"rules of a NUL target", "GET", "/api/v1/alerts/rules?target=k%00root", e.read, "", 400, `"param":"target"`},
		{"webhook name with NUL", "POST", "/api/v1/alerts/webhooks", e.admin, `{"url":"https://hooks.example.net/","name":"x\u0000"}`, 400, `"param":"name"`},
		{"webhook secret with NUL", "POST", "/api/v1/alerts/webhooks", e.admin, `{"url":"https://hooks.example.net/","secret":"0123456789abcdef\u0000"}`, 400, `"param":"secret"`},
		{"webhook target with a control char", "POST", "/api/v1/alerts/webhooks", e.admin, `{"url":"https://hooks.example.net/","target":"k\u001broot"}`, 400, `"param":"target"`},
		{"rules", "GET", "/api/v1/alerts/rules?target=k-root", e.read, "", 200, `"kind":"site_lost"`},
		{"alerts", "GET", "/api/v1/alerts?status=firing", e.read, "", 200, `"data":[]`},
		{"alerts bad status", "GET", "/api/v1/alerts?status=sad", e.read, "", 400, "status"},
		{"webhook", "POST", "/api/v1/alerts/webhooks", e.admin, `{"url":"https://hooks.example.net/anycatch"}`, 201, `"secret":"`},
		{"webhook ftp", "POST", "/api/v1/alerts/webhooks", e.admin, `{"url":"ftp://hooks.example.net/"}`, 400, "http or https"},
		{"webhook credentials", "POST", "/api/v1/alerts/webhooks", e.admin, `{"url":"https://u:p@hooks.example.net/"}`, 400, "credentials"},
		{"webhook short secret", "POST", "/api/v1/alerts/webhooks", e.admin, `{"url":"https://hooks.example.net/","secret":"short"}`, 400, "16"},
		{"webhooks hide secrets", "GET", "/api/v1/alerts/webhooks", e.admin, "", 200, `"allow_private":false`},
		{"webhooks by a reader", "GET", "/api/v1/alerts/webhooks", e.read, "", 403, "forbidden"},
		// The endpoint resolves nowhere reachable from a test: a loopback
		// literal, refused by the guard before any packet is sent.
		{"webhook loopback", "POST", "/api/v1/alerts/webhooks", e.admin, `{"url":"http://127.0.0.1:9/x","max_attempts":1}`, 201, `"id":2`},
		{"send test to loopback", "POST", "/api/v1/alerts/webhooks/2/test", e.admin, "", 200, "not allowed for webhooks"},
		{"delivery log", "GET", "/api/v1/alerts/webhooks/2/deliveries", e.admin, "", 200, `"state":"failed"`},
		{"delivery log of a missing webhook", "GET", "/api/v1/alerts/webhooks/99/deliveries", e.admin, "", 404, "webhook"},
		{"test a missing webhook", "POST", "/api/v1/alerts/webhooks/99/test", e.admin, "", 404, "webhook"},
		{"delete webhook", "DELETE", "/api/v1/alerts/webhooks/2", e.admin, "", 204, ""},
		{"delete webhook again", "DELETE", "/api/v1/alerts/webhooks/2", e.admin, "", 404, ""},
		{"mute rule", "PATCH", "/api/v1/alerts/rules/1", e.admin, `{"enabled":false}`, 204, ""},
		{"muted rule listed", "GET", "/api/v1/alerts/rules", e.read, "", 200, `"enabled":false`},
		{"mute rule without enabled", "PATCH", "/api/v1/alerts/rules/1", e.admin, `{}`, 400, "enabled"},
		{"mute a missing rule", "PATCH", "/api/v1/alerts/rules/99", e.admin, `{"enabled":false}`, 404, "alert rule"},
		{"mute rule by a reader", "PATCH", "/api/v1/alerts/rules/1", e.read, `{"enabled":true}`, 403, "forbidden"},
		{"pause webhook", "PATCH", "/api/v1/alerts/webhooks/1", e.admin, `{"enabled":false}`, 204, ""},
		{"paused webhook listed", "GET", "/api/v1/alerts/webhooks", e.admin, "", 200, `"enabled":false`},
		{"delete rule", "DELETE", "/api/v1/alerts/rules/1", e.admin, "", 204, ""},
		{"delete rule bad id", "DELETE", "/api/v1/alerts/rules/x", e.admin, "", 400, "id"},
	}
	for _, s := range steps {
		r := e.do(s.method, s.path, s.key, s.body)
		if r.status != s.want || !strings.Contains(string(r.body), s.contains) {
			t.Errorf("%s: got %d %s, want %d containing %q", s.name, r.status, r.body, s.want, s.contains)
		}
		if s.name == "webhooks hide secrets" && strings.Contains(string(r.body), `"secret"`) {
			t.Errorf("webhook listing shows a secret: %s", r.body)
		}
	}
}

func TestAlertEndpointsWithoutService(t *testing.T) {
	e := newEnv(t, api.Config{})
	r := e.do("GET", "/api/v1/alerts", e.read, "")
	if r.status != 503 {
		t.Errorf("alerts without a service: %d %s, want 503", r.status, r.body)
	}
}
