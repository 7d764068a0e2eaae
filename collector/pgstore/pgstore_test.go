package pgstore_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.DiscardHandler)

type rig struct {
	db  *store.DB
	c   *collector.Collector
	srv *httptest.Server
	tg  *store.Target
}

func newRig(t *testing.T, url string, mod func(*collector.Config)) *rig {
	ctx := context.Background()
	db, err := store.Open(ctx, url, store.Options{Logger: quiet, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	tg := &store.Target{Name: "k-root", Addr4: "198.18.53.53", Addr6: "2001:db8:53::53", IntervalSec: 60,
		Specs:         []measure.Spec{{Kind: measure.KindIdentity}, {Kind: measure.KindPing}},
		IdentityOrder: []string{"hostname_bind", "id_server", "nsid"}, Enabled: true}
	if err := db.CreateTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	if err := db.ReplaceRules(ctx, tg.ID, []catchment.Rule{
		{Source: "hostname_bind", Match: "regex", Pattern: `^ns\d+\.(?P<site>[a-z]{3})\.k\.example$`},
		{Source: "nsid", Match: "exact", Pattern: "k-fra-1", Site: "fra"},
	}); err != nil {
		t.Fatal(err)
	}
	cfg := collector.Config{Store: pgstore.New(db), Logger: quiet, RefreshEvery: time.Hour, CommitTimeout: 3 * time.Second, RetryAfter: time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := collector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(runCtx) }()
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return &rig{db: db, c: c, srv: srv, tg: tg}
}

func (r *rig) token(t *testing.T, o collector.TokenOptions) string {
	_, s, err := collector.Tokens{Store: pgstore.New(r.db)}.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type probe struct {
	t   *testing.T
	url string
	id  string
	key ed25519.PrivateKey
}

func (r *rig) enroll(t *testing.T, token string) (*probe, int, string) {
	_, key, _ := ed25519.GenerateKey(nil)
	p := &probe{t: t, url: r.srv.URL, key: key}
	body, _ := json.Marshal(measure.EnrollRequest{Token: token, PublicKey: key.Public().(ed25519.PublicKey), Version: "it"})
	resp, err := http.Post(r.srv.URL+measure.PathEnroll, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var er measure.EnrollResponse
	json.Unmarshal(b, &er)
	p.id = er.Probe
	return p, resp.StatusCode, string(b)
}

func (p *probe) do(method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	req, _ := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	measure.SignRequest(req.Header, p.key, p.id, method, path, body, time.Now())
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (p *probe) upload(rs ...*measure.Result) (int, measure.UploadResponse) {
	var body []byte
	for _, r := range rs {
		b, _ := json.Marshal(r)
		body = append(append(body, b...), '\n')
	}
	resp, b := p.do(http.MethodPost, measure.PathResults, body, nil)
	var ur measure.UploadResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &ur); err != nil {
			p.t.Fatal(err)
		}
	}
	return resp.StatusCode, ur
}

var base = time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

func ident(i int, id measure.Identity) *measure.Result {
	ts := base.Add(time.Duration(i) * time.Minute)
	return &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Measurement: "k-root/identity/4", Kind: measure.KindIdentity,
		Time: ts, Dst: "198.18.53.53", AF: 4,
		DNS: &measure.DNSResult{Server: "198.18.53.53:53", Exchanges: []measure.DNSExchange{{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: 10 + float64(i), Rcode: "NOERROR"}}, Identity: &id}}
}

func count(t *testing.T, db *store.DB, q string, args ...any) int {
	var n int
	if err := db.Pool().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIngestEndToEnd(t *testing.T) {
	r := newRig(t, pgtest.NewURL(t), nil)
	p, code, b := r.enroll(t, r.token(t, collector.TokenOptions{Name: "it"}))
	if code != http.StatusCreated {
		t.Fatalf("enroll: %d %s", code, b)
	}
	resp, _ := p.do(http.MethodGet, measure.PathSchedule, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("schedule: %d", resp.StatusCode)
	}
	resp, _ = p.do(http.MethodGet, measure.PathSchedule, nil, map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("schedule with ETag: %d, want 304", resp.StatusCode)
	}

	// ams, ams, fra (NSID only), unmapped, unmapped, unreachable, ams.
	unreach := ident(5, measure.Identity{})
	unreach.DNS.Exchanges[0].Error, unreach.DNS.Exchanges[0].Rcode, unreach.DNS.Identity = "timeout", "", nil
	rs := []*measure.Result{
		ident(0, measure.Identity{HostnameBind: "ns1.ams.k.example"}),
		ident(1, measure.Identity{HostnameBind: "ns2.ams.k.example"}),
		ident(2, measure.Identity{NSID: "k-fra-1"}),
		ident(3, measure.Identity{HostnameBind: "mystery-box"}),
		ident(4, measure.Identity{HostnameBind: "mystery-box"}),
		unreach,
		ident(6, measure.Identity{HostnameBind: "ns1.ams.k.example"}),
	}
	code, ur := p.upload(rs...)
	if code != http.StatusOK || ur.Accepted != len(rs) {
		t.Fatalf("upload: %d %+v", code, ur)
	}
	if n := count(t, r.db, `SELECT count(*) FROM results WHERE probe_id = $1`, p.id); n != len(rs) {
		t.Errorf("stored %d results, want %d", n, len(rs))
	}
	var ident3, site3 *string
	r.db.Pool().QueryRow(context.Background(), `SELECT identity, site FROM results WHERE id = $1`, rs[3].ID.String()).Scan(&ident3, &site3)
	if ident3 == nil || *ident3 != "mystery-box" || site3 != nil {
		t.Errorf("unmapped identity stored as identity=%v site=%v, want raw identity and no site", ident3, site3)
	}
	// Changes: first (ams), ams->fra, fra->?mystery, ?mystery->ams.
	rows, err := r.db.Pool().Query(context.Background(),
		`SELECT COALESCE(from_site, from_identity, ''), COALESCE(to_site, to_identity, '') FROM catchment_changes WHERE probe_id = $1 ORDER BY ts`, p.id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var f, to string
		rows.Scan(&f, &to)
		got = append(got, f+">"+to)
	}
	rows.Close()
	want := []string{">ams", "ams>fra", "fra>mystery-box", "mystery-box>ams"}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d: %s, want %s", i, got[i], want[i])
		}
	}
	// A retried upload is stored once.
	code, ur = p.upload(rs...)
	if code != http.StatusOK || ur.Duplicate != len(rs) || ur.Accepted != 0 {
		t.Errorf("re-upload: %d %+v, want all duplicate", code, ur)
	}
	if n := count(t, r.db, `SELECT count(*) FROM results`); n != len(rs) {
		t.Errorf("after re-upload %d results, want %d", n, len(rs))
	}

	// Heartbeat updates the probe.
	hb, _ := json.Marshal(measure.Heartbeat{Version: "v9", SpoolDepth: 3, Dropped: 1, Location: &measure.Location{Lat: 1.5, Lon: 2.5}})
	if resp, b := p.do(http.MethodPost, measure.PathHeartbeat, hb, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, b)
	}
	if n := count(t, r.db, `SELECT count(*) FROM probes WHERE id = $1 AND version = 'v9' AND spool_depth = 3 AND declared_lat = 1.5 AND last_seen IS NOT NULL AND src_addr = '127.0.0.1'`, p.id); n != 1 {
		t.Errorf("heartbeat not recorded")
	}

	// Another probe's credential is refused.
	q, _, _ := r.enroll(t, r.token(t, collector.TokenOptions{}))
	imp := *q
	imp.id = p.id
	if code, _ := imp.upload(ident(9, measure.Identity{})); code != http.StatusUnauthorized {
		t.Errorf("impersonation: %d, want 401", code)
	}
	// Disabled probes are refused (after the key cache TTL; use a fresh collector).
	if err := r.db.SetProbeStatus(context.Background(), q.id, "disabled"); err != nil {
		t.Fatal(err)
	}
	c2, _ := collector.New(collector.Config{Store: pgstore.New(r.db), Logger: quiet})
	srv2 := httptest.NewServer(c2.Handler())
	defer srv2.Close()
	q.url = srv2.URL
	if resp, _ := q.do(http.MethodGet, measure.PathSchedule, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("disabled probe: %d, want 403", resp.StatusCode)
	}
}

func TestTokensAndLimits(t *testing.T) {
	r := newRig(t, pgtest.NewURL(t), func(c *collector.Config) { c.Limits = collector.Limits{PerAddr: 2} })
	ctx := context.Background()
	single := r.token(t, collector.TokenOptions{MaxUses: 1})
	tokens := collector.Tokens{Store: pgstore.New(r.db), Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	_, expired, _ := tokens.Create(ctx, collector.TokenOptions{TTL: time.Minute})
	tokens.Now = nil
	rt, revoked, _ := tokens.Create(ctx, collector.TokenOptions{})
	if err := tokens.Revoke(ctx, rt.ID); err != nil {
		t.Fatal(err)
	}
	multi := r.token(t, collector.TokenOptions{})
	for _, tc := range []struct {
		name, tok string
		want      int
	}{
		{"single first", single, 201},
		{"single again", single, 401},
		{"expired", expired, 401},
		{"revoked", revoked, 401},
		{"unknown", "act_x", 401},
		{"multi (second probe from 127.0.0.1)", multi, 201},
		{"multi over the per-address cap", multi, 403},
	} {
		if _, code, b := r.enroll(t, tc.tok); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, b, tc.want)
		}
	}
	list, err := tokens.List(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("list: %v %d tokens", err, len(list))
	}
	if list[0].Uses != 1 || list[3].Uses != 1 || list[2].RevokedAt == nil {
		t.Errorf("token uses/revocation not recorded: %+v", list)
	}
}

// TestStoreFault stops PostgreSQL during ingest: the collector answers 503
// without acknowledging anything; after PostgreSQL returns, the probe's
// retries store every result exactly once.
func TestStoreFault(t *testing.T) {
	srv := pgtest.NewServer(t)
	r := newRig(t, srv.URL(), nil)
	p, code, b := r.enroll(t, r.token(t, collector.TokenOptions{}))
	if code != 201 {
		t.Fatalf("enroll: %d %s", code, b)
	}
	var all []*measure.Result
	for i := 0; i < 30; i++ {
		all = append(all, ident(i, measure.Identity{HostnameBind: "ns1.ams.k.example"}))
	}
	if code, ur := p.upload(all[:10]...); code != 200 || ur.Accepted != 10 {
		t.Fatalf("first upload: %d %+v", code, ur)
	}
	ctx := context.Background()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	pending := all[5:] // 5 already stored, 25 new
	code, ur := p.upload(pending...)
	if code != http.StatusServiceUnavailable || len(ur.Lines) != 0 {
		t.Fatalf("upload with PostgreSQL down: %d %+v, want 503 and no verdicts", code, ur)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The probe retries until acknowledged (bounded).
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, ur = p.upload(pending...)
		if code == http.StatusOK {
			if ur.Accepted != 20 || ur.Duplicate != 5 {
				t.Errorf("retry: %+v, want 20 accepted 5 duplicate", ur)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after PostgreSQL restarted", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := count(t, r.db, `SELECT count(*) FROM results`); n != 30 {
		t.Errorf("%d results stored, want exactly 30", n)
	}
	if n := count(t, r.db, `SELECT count(DISTINCT id) FROM results`); n != 30 {
		t.Errorf("%d distinct ids, want 30", n)
	}
}

// TestReidentify: identity answers stored unidentified become a site after
// a rule is added, and the change history is rebuilt.
func TestReidentify(t *testing.T) {
	r := newRig(t, pgtest.NewURL(t), nil)
	p, _, _ := r.enroll(t, r.token(t, collector.TokenOptions{}))
	rs := []*measure.Result{
		ident(0, measure.Identity{HostnameBind: "ns1.ams.k.example"}),
		ident(1, measure.Identity{HostnameBind: "cdg-box-1"}),
		ident(2, measure.Identity{HostnameBind: "cdg-box-2"}),
	}
	if code, ur := p.upload(rs...); code != 200 || ur.Accepted != 3 {
		t.Fatalf("upload: %d %+v", code, ur)
	}
	ctx := context.Background()
	rules := []catchment.Rule{
		{Source: "hostname_bind", Match: "regex", Pattern: `^ns\d+\.(?P<site>[a-z]{3})\.k\.example$`},
		{Source: "hostname_bind", Match: "regex", Pattern: `^cdg-box-\d+$`, Site: "cdg"},
	}
	if err := r.db.ReplaceRules(ctx, r.tg.ID, rules); err != nil {
		t.Fatal(err)
	}
	idf, err := catchment.NewIdentifier(r.tg.IdentityOrder, rules)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.db.Reidentify(ctx, r.tg.ID, time.Time{}, idf)
	if err != nil {
		t.Fatal(err)
	}
	// Before: ams, ?cdg-box-1, ?cdg-box-2 (3 changes). After: ams, cdg (2).
	if st.Results != 3 || st.Updated != 2 || st.Changes != 2 {
		t.Errorf("stats %+v, want 3 results, 2 updated, 2 changes", st)
	}
	if n := count(t, r.db, `SELECT count(*) FROM results WHERE site = 'cdg'`); n != 2 {
		t.Errorf("%d results at cdg, want 2", n)
	}
	if n := count(t, r.db, `SELECT count(*) FROM catchment_latest WHERE site = 'cdg' AND probe_id = $1`, p.id); n != 1 {
		t.Errorf("latest not at cdg")
	}
}
