package collector_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
)

// fakeStore is an in-memory collector.Store; ingest can be overridden.
type fakeStore struct {
	mu      sync.Mutex
	targets []collector.Target
	probes  map[string]collector.ProbeKey
	tokens  map[[32]byte]*collector.Token
	results map[measure.UUID]collector.Row
	beats   []collector.HeartbeatUpdate
	enrolls []collector.Enrollment
	ingest  func(ctx context.Context, rows []collector.Row) ([]bool, error) // nil: store in results
	nextTok int64
	perAddr map[string]int
}

func newFakeStore() *fakeStore {
	return &fakeStore{probes: map[string]collector.ProbeKey{}, tokens: map[[32]byte]*collector.Token{},
		results: map[measure.UUID]collector.Row{}, perAddr: map[string]int{}}
}

func (f *fakeStore) EnabledTargets(context.Context) ([]collector.Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]collector.Target(nil), f.targets...), nil
}

func (f *fakeStore) ProbeKey(_ context.Context, id string) (collector.ProbeKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.probes[id]
	if !ok {
		return k, collector.ErrUnknownProbe
	}
	return k, nil
}

func (f *fakeStore) Enroll(_ context.Context, e collector.Enrollment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tokens[e.TokenHash]
	if t == nil || t.RevokedAt != nil || t.ExpiresAt != nil && !e.Now.Before(*t.ExpiresAt) || t.MaxUses > 0 && t.Uses >= t.MaxUses {
		return fmt.Errorf("%w: unusable", collector.ErrTokenInvalid)
	}
	if e.Limits.PerAddr >= 0 && f.perAddr[e.Src.String()] >= e.Limits.PerAddr {
		return fmt.Errorf("%w: too many from %s", collector.ErrProbeLimit, e.Src)
	}
	t.Uses++
	f.perAddr[e.Src.String()]++
	f.probes[e.ProbeID] = collector.ProbeKey{PublicKey: e.PublicKey, Role: collector.RoleProbe}
	f.enrolls = append(f.enrolls, e)
	return nil
}

func (f *fakeStore) Heartbeat(_ context.Context, h collector.HeartbeatUpdate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beats = append(f.beats, h)
	return nil
}

func (f *fakeStore) IngestBatch(ctx context.Context, rows []collector.Row) ([]bool, error) {
	f.mu.Lock()
	ing := f.ingest
	f.mu.Unlock()
	if ing != nil {
		return ing(ctx, rows)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]bool, len(rows))
	for i, r := range rows {
		if _, ok := f.results[r.Result.ID]; !ok {
			f.results[r.Result.ID] = r
			out[i] = true
		}
	}
	return out, nil
}

func (f *fakeStore) CreateToken(_ context.Context, t collector.NewToken) (collector.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextTok++
	tok := &collector.Token{ID: f.nextTok, Name: t.Name, MaxUses: t.MaxUses, ExpiresAt: t.ExpiresAt, CreatedAt: time.Now()}
	f.tokens[t.Hash] = tok
	return *tok, nil
}

func (f *fakeStore) ListTokens(context.Context) ([]collector.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []collector.Token
	for _, t := range f.tokens {
		out = append(out, *t)
	}
	return out, nil
}

func (f *fakeStore) RevokeToken(_ context.Context, id int64, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		if t.ID == id {
			t.RevokedAt = &at
			return nil
		}
	}
	return collector.ErrUnknownToken
}

func (f *fakeStore) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.results)
}

// testTarget is k-root-like: identity + ping on v4 and v6.
func testTarget() collector.Target {
	return collector.Target{
		Target: catchment.Target{ID: 1, Name: "k-root", Addr4: "198.18.53.53", Addr6: "2001:db8:53::53", IntervalSec: 300,
			Specs:         []measure.Spec{{Kind: measure.KindIdentity}, {Kind: measure.KindPing}},
			IdentityOrder: []string{"hostname_bind", "id_server", "nsid"}},
		Rules: []catchment.Rule{
			{Source: "hostname_bind", Match: "regex", Pattern: `^ns\d+\.(?P<site>[a-z]{3})\.k\.example$`},
			{Source: "nsid", Match: "exact", Pattern: "k-fra-1", Site: "fra"},
		},
	}
}

// probeClient is a test probe: key pair and signed requests.
type probeClient struct {
	t    testing.TB
	url  string
	id   string
	key  ed25519.PrivateKey
	now  func() time.Time
	http *http.Client
}

func newProbe(t testing.TB, url string) *probeClient {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &probeClient{t: t, url: url, key: key, now: time.Now, http: &http.Client{Timeout: 30 * time.Second}}
}

func (p *probeClient) enroll(token string) (int, []byte) {
	body, _ := json.Marshal(measure.EnrollRequest{Token: token, PublicKey: p.key.Public().(ed25519.PublicKey), Version: "test"})
	resp, err := p.http.Post(p.url+measure.PathEnroll, "application/json", bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		var er measure.EnrollResponse
		if err := json.Unmarshal(b, &er); err != nil {
			p.t.Fatal(err)
		}
		p.id = er.Probe
	}
	return resp.StatusCode, b
}

func (p *probeClient) do(method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	measure.SignRequest(req.Header, p.key, p.id, method, path, body, p.now())
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (p *probeClient) upload(lines [][]byte, gz bool) (*http.Response, measure.UploadResponse) {
	body := bytes.Join(lines, []byte("\n"))
	hdr := map[string]string{"Content-Type": "application/x-ndjson"}
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		body = buf.Bytes()
		hdr["Content-Encoding"] = "gzip"
	}
	resp, b := p.do(http.MethodPost, measure.PathResults, body, hdr)
	var ur measure.UploadResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &ur); err != nil {
			p.t.Fatalf("decode upload response: %v (%s)", err, b)
		}
	}
	return resp, ur
}

func identityResult(msm, dst string, af int, id measure.Identity) *measure.Result {
	r := &measure.Result{V: 1, ID: measure.NewUUIDv7(time.Now()), Measurement: msm, Kind: measure.KindIdentity,
		Time: time.Now().UTC().Truncate(time.Millisecond), Dst: dst, AF: af,
		DNS: &measure.DNSResult{Server: dst + ":53", Exchanges: []measure.DNSExchange{{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: 12.5, Rcode: "NOERROR"}}, Identity: &id}}
	return r
}

func pingResult(msm, dst string, af int) *measure.Result {
	med := 9.5
	return &measure.Result{V: 1, ID: measure.NewUUIDv7(time.Now()), Measurement: msm, Kind: measure.KindPing,
		Time: time.Now().UTC().Truncate(time.Millisecond), Dst: dst, AF: af,
		Ping: &measure.PingResult{Mode: "dgram", Size: 56, Sent: 3, Received: 2, Min: &med, Avg: &med, Median: &med, Max: &med}}
}

func line(t testing.TB, r *measure.Result) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// env is a running collector over a fake store.
type env struct {
	c     *collector.Collector
	store *fakeStore
	srv   *httptest.Server
	tok   string
}

func newEnv(t *testing.T, mod func(*collector.Config)) *env {
	fs := newFakeStore()
	fs.targets = []collector.Target{testTarget()}
	cfg := collector.Config{Store: fs, RefreshEvery: time.Hour, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	c, err := collector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	_, secret, err := collector.Tokens{Store: fs}.Create(ctx, collector.TokenOptions{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{c: c, store: fs, srv: srv, tok: secret}
}

func (e *env) probe(t *testing.T) *probeClient {
	p := newProbe(t, e.srv.URL)
	if code, b := p.enroll(e.tok); code != http.StatusCreated {
		t.Fatalf("enroll: %d %s", code, b)
	}
	return p
}
