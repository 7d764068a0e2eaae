package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a server over a fresh migrated database, on loopback.
type env struct {
	t      *testing.T
	db     *store.DB
	srv    *httptest.Server
	admin  string // admin key secret
	read   string // read key secret
	now    time.Time
	target api.Target
}

func newEnv(t *testing.T, cfg api.Config) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, pgtest.NewURL(t), store.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	e := &env{t: t, db: db, now: time.Now().UTC().Truncate(time.Second)}
	st := pgstore.New(db)
	cfg.Store = st
	cfg.Now = func() time.Time { return e.now }
	e.srv = httptest.NewServer(api.New(cfg))
	t.Cleanup(e.srv.Close)
	if _, e.admin, err = api.CreateKey(ctx, st, "admin", api.ScopeAdmin, nil); err != nil {
		t.Fatal(err)
	}
	if _, e.read, err = api.CreateKey(ctx, st, "reader", api.ScopeRead, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// seed stores a target with two sites and four probes whose identity
// results put p-1 at ams then fra, p-2 at ams, p-3 on an unmapped identity
// and p-4 unreachable.
func (e *env) seed() {
	t := e.t
	ctx := context.Background()
	tg := store.Target{Name: "k-root", Addr4: "198.18.53.53", IntervalSec: 300, Enabled: true,
		Specs: []measure.Spec{{Kind: measure.KindIdentity}}, IdentityOrder: []string{"hostname_bind", "id_server", "nsid"}}
	if err := e.db.CreateTarget(ctx, &tg); err != nil {
		t.Fatal(err)
	}
	e.target = api.Target(tg)
	f := func(v float64) *float64 { return &v }
	for _, s := range []store.Site{{Code: "ams", Name: "Amsterdam", Lat: f(52.37), Lon: f(4.9)}, {Code: "fra", Name: "Frankfurt", Lat: f(50.1), Lon: f(8.68)}} {
		if err := e.db.PutSite(ctx, tg.ID, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.db.ReplaceRules(ctx, tg.ID, []catchment.Rule{{Source: "any", Match: "exact", Pattern: "ams1.k", Site: "ams"},
		{Source: "any", Match: "exact", Pattern: "fra1.k", Site: "fra"}}); err != nil {
		t.Fatal(err)
	}
	_, err := e.db.Pool().Exec(ctx, `INSERT INTO probes (id, asn, country, continent, declared_lat, declared_lon, version, last_seen) VALUES
		('p-1', 3320, 'DE', 'EU', 52.52, 13.40, 'v1', $1),
		('p-2', 1136, 'NL', 'EU', 52.09, 5.12, 'v1', $2),
		('p-3', 7922, 'US', 'NA', 40.71, -74.0, 'v1', NULL),
		('p-4', 3320, 'DE', 'EU', 48.14, 11.58, 'v1', $1)`, e.now.Add(-time.Minute), e.now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	base, late := e.now.Add(-2*time.Hour), e.now.Add(-5*time.Minute)
	var rows []store.ResultRow
	add := func(probe string, ts time.Time, ident, site string, rtt float64) {
		r := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: probe, Measurement: "k-root/identity", Target: "k-root",
			Kind: measure.KindIdentity, Time: ts, Dst: "198.18.53.53", AF: 4}
		ex := measure.DNSExchange{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp"}
		row := store.ResultRow{TargetID: tg.ID, Result: r}
		switch {
		case ident == "":
			ex.Error = "timeout"
			row.State = catchment.StateUnreachable
		default:
			ex.RTT, ex.Rcode = rtt, "NOERROR"
			row.RTT, row.Identity, row.Site = &rtt, ident, site
			row.State = catchment.StateSite
			if site == "" {
				row.State = catchment.StateUnidentified
			}
		}
		r.DNS = &measure.DNSResult{Server: "198.18.53.53:53", Exchanges: []measure.DNSExchange{ex}, Identity: &measure.Identity{HostnameBind: ident}}
		if err := r.Validate(e.now); err != nil {
			t.Fatalf("seed result: %v", err)
		}
		rows = append(rows, row)
	}
	add("p-1", base, "ams1.k", "ams", 10)
	add("p-2", base, "ams1.k", "ams", 12)
	add("p-1", base.Add(time.Hour), "fra1.k", "fra", 20)
	add("p-1", base.Add(time.Hour+10*time.Minute), "ams1.k", "ams", 11)
	add("p-1", late, "fra1.k", "fra", 21)
	add("p-2", late, "ams1.k", "ams", 13)
	add("p-3", late, "weird.host", "", 90)
	add("p-4", late, "", "", 0)
	if _, err := e.db.IngestBatch(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := e.db.RollupResults(ctx, base.Add(-time.Hour), e.now); err != nil {
		t.Fatal(err)
	}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path, key, body string, hdr ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

type apiError struct {
	Error struct{ Code, Message, Param string }
}

func TestAuth(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	revokedKey, revoked, err := api.CreateKey(context.Background(), pgstore.New(e.db), "old", api.ScopeAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("DELETE", "/api/v1/admin/keys/"+itoa(revokedKey.ID), e.admin, ""); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	tests := []struct {
		name, method, path, key string
		want                    int
		code                    string
	}{
		{"no key", "GET", "/api/v1/targets", "", 401, "unauthorized"},
		{"malformed key", "GET", "/api/v1/targets", "nonsense", 401, "unauthorized"},
		{"unknown key", "GET", "/api/v1/targets", "ack_00000000_" + strings.Repeat("A", 43), 401, "unauthorized"},
		{"tampered key", "GET", "/api/v1/targets", e.read[:len(e.read)-1] + "x", 401, "unauthorized"},
		{"revoked key", "GET", "/api/v1/targets", revoked, 401, "unauthorized"},
		{"read key reads", "GET", "/api/v1/targets", e.read, 200, ""},
		{"read key on admin route", "GET", "/api/v1/admin/keys", e.read, 403, "forbidden"},
		{"read key cannot write", "DELETE", "/api/v1/targets/k-root", e.read, 403, "forbidden"},
		{"admin key on admin route", "GET", "/api/v1/admin/keys", e.admin, 200, ""},
		{"openapi needs no key", "GET", "/api/v1/openapi.json", "", 200, ""},
		{"tokens unavailable without service", "GET", "/api/v1/admin/tokens", e.admin, 503, "unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.key, "")
			if r.status != tc.want {
				t.Fatalf("got status %d, want %d (%s)", r.status, tc.want, r.body)
			}
			if tc.code != "" {
				var ae apiError
				r.decode(t, &ae)
				if ae.Error.Code != tc.code {
					t.Errorf("got code %q, want %q", ae.Error.Code, tc.code)
				}
			}
		})
	}
	// The secret never appears in the key list; used keys show last_used_at.
	r := e.do("GET", "/api/v1/admin/keys", e.admin, "")
	var keys struct{ Data []api.APIKey }
	r.decode(t, &keys)
	for _, k := range keys.Data {
		if k.Name == "admin" && k.LastUsedAt == nil {
			t.Errorf("admin key used but last_used_at is null")
		}
	}
	if strings.Contains(string(r.body), e.admin[13:]) || strings.Contains(string(r.body), "hash") {
		t.Errorf("key list leaks a secret or hash: %s", r.body)
	}
}

func TestAnonymousReadAndRateLimit(t *testing.T) {
	e := newEnv(t, api.Config{AnonymousRead: true, AnonymousRatePerMin: 3})
	for i := range 3 {
		if r := e.do("GET", "/api/v1/targets", "", ""); r.status != 200 {
			t.Fatalf("anonymous read %d: %d %s", i, r.status, r.body)
		}
	}
	r := e.do("GET", "/api/v1/targets", "", "")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("got %d Retry-After %q, want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	var ae apiError
	r.decode(t, &ae)
	if ae.Error.Code != "rate_limited" {
		t.Errorf("got code %q, want rate_limited", ae.Error.Code)
	}
	// Anonymous callers still cannot write, and a bad key is refused even
	// though anonymous reads are allowed.
	if r := e.do("POST", "/api/v1/admin/keys", "", `{"scope":"read"}`); r.status != 403 && r.status != 429 {
		t.Errorf("anonymous admin: got %d", r.status)
	}
	if r := e.do("GET", "/api/v1/targets", "bogus", ""); r.status != 401 {
		t.Errorf("bad key with anonymous read: got %d, want 401", r.status)
	}
	// Keys have their own budget.
	if r := e.do("GET", "/api/v1/targets", e.read, ""); r.status != 200 {
		t.Errorf("keyed read after anonymous limit: got %d", r.status)
	}
}

func TestBadParameters(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	tests := []struct{ name, path, param string }{
		{"sql in country", "/api/v1/probes?country=" + url.QueryEscape("' OR 1=1--"), "country"},
		{"sql in target path", "/api/v1/targets/" + url.PathEscape("x;drop table targets"), "target"},
		{"sql in results target", "/api/v1/results?target=" + url.QueryEscape("x;drop table results"), "target"},
		{"bad asn", "/api/v1/probes?asn=12ab", "asn"},
		{"bad status", "/api/v1/probes?status=gone", "status"},
		{"bad limit", "/api/v1/probes?limit=100000", "limit"},
		{"bad cursor", "/api/v1/probes?cursor=bm90IGEgY3Vyc29y", "cursor"},
		{"bad at", "/api/v1/targets/k-root/catchment?at=yesterday", "at"},
		{"future at", "/api/v1/targets/k-root/catchment?at=2999-01-01T00:00:00Z", "at"},
		{"bad window", "/api/v1/targets/k-root/catchment?window=-5m", "window"},
		{"bad af", "/api/v1/targets/k-root/catchment?af=5", "af"},
		{"bad group", "/api/v1/targets/k-root/catchment?group=city", "group"},
		{"region without set", "/api/v1/targets/k-root/catchment?group=region", "regions"},
		{"bad region set", "/api/v1/targets/k-root/catchment?group=region&regions=" + url.QueryEscape("eu=DE,' OR 1=1"), "regions"},
		{"bad format", "/api/v1/targets/k-root/catchment?format=xml", "format"},
		{"from after to", "/api/v1/targets/k-root/latency?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"},
		{"bad kind", "/api/v1/results?target=k-root&kind=smoke", "kind"},
		{"missing results target", "/api/v1/results", "target"},
		{"bad probe", "/api/v1/targets/k-root/changes?probe=" + url.QueryEscape("p-1' --"), "probe"},
		{"bad flap_min", "/api/v1/targets/k-root/changes?flap_min=0", "flap_min"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, e.read, "")
			if r.status != 400 {
				t.Fatalf("got %d, want 400 (%s)", r.status, r.body)
			}
			var ae apiError
			r.decode(t, &ae)
			if ae.Error.Code != "invalid" || ae.Error.Param != tc.param {
				t.Errorf("got code %q param %q, want invalid %q", ae.Error.Code, ae.Error.Param, tc.param)
			}
		})
	}
	// The tables survived and the data is intact.
	var n int
	if err := e.db.Pool().QueryRow(context.Background(), "SELECT count(*) FROM targets").Scan(&n); err != nil || n != 1 {
		t.Errorf("targets after injection attempts: %d, %v", n, err)
	}
	// A well-formed but unknown name is 404, not an error.
	if r := e.do("GET", "/api/v1/targets/nope/catchment", e.read, ""); r.status != 404 {
		t.Errorf("unknown target: got %d", r.status)
	}
	if r := e.do("GET", "/api/v1/probes/p-404", e.read, ""); r.status != 404 {
		t.Errorf("unknown probe: got %d", r.status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func csvRecords(t *testing.T, r resp) [][]string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("content type %q, want text/csv", ct)
	}
	recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, r.body)
	}
	return recs
}

// TestAnonymousRateLimitBehindProxy: behind a trusted proxy each client
// the proxy names has its own anonymous budget; without the proxy
// trusted, X-Forwarded-For is ignored and the peer's budget applies.
func TestAnonymousRateLimitBehindProxy(t *testing.T) {
	get := func(t *testing.T, e *env, xff string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/targets", nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("trusted proxy", func(t *testing.T) {
		e := newEnv(t, api.Config{AnonymousRead: true, AnonymousRatePerMin: 3,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
		for i := range 3 {
			if got := get(t, e, "198.51.100.1"); got != 200 {
				t.Fatalf("client A read %d: got %d, want 200", i, got)
			}
		}
		if got := get(t, e, "198.51.100.1"); got != 429 {
			t.Errorf("client A over its budget: got %d, want 429", got)
		}
		if got := get(t, e, "198.51.100.2"); got != 200 {
			t.Errorf("client B behind the same proxy: got %d, want 200 (own budget)", got)
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		e := newEnv(t, api.Config{AnonymousRead: true, AnonymousRatePerMin: 3})
		for i := range 3 {
			if got := get(t, e, fmt.Sprintf("198.51.100.%d", i+1)); got != 200 {
				t.Fatalf("read %d: got %d, want 200", i, got)
			}
		}
		if got := get(t, e, "198.51.100.9"); got != 429 {
			t.Errorf("forged X-Forwarded-For from an untrusted peer: got %d, want 429 (peer's budget)", got)
		}
	})
}
