package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
)

func TestEnrollScheduleUpload(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	if !strings.HasPrefix(p.id, "p-") {
		t.Fatalf("probe id %q, want p- prefix", p.id)
	}

	resp, b := p.do(http.MethodGet, measure.PathSchedule, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("schedule: %d %s", resp.StatusCode, b)
	}
	var s measure.Schedule
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range s.Measurements {
		ids = append(ids, m.ID)
		if m.OffsetSec < 0 || m.OffsetSec >= m.IntervalSec {
			t.Errorf("%s: offset %d outside [0,%d)", m.ID, m.OffsetSec, m.IntervalSec)
		}
	}
	want := "k-root/identity/4 k-root/identity/6 k-root/ping/4 k-root/ping/6"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("measurements %q, want %q", got, want)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || `"`+s.Version+`"` != etag {
		t.Errorf("ETag %q does not match version %q", etag, s.Version)
	}
	resp, _ = p.do(http.MethodGet, measure.PathSchedule, nil, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
	}
	// Same schedule for the same probe, other offsets for another probe.
	_, b2 := p.do(http.MethodGet, measure.PathSchedule, nil, nil)
	if !bytes.Equal(b, b2) {
		t.Errorf("schedule not stable across requests")
	}
	q := e.probe(t)
	resp, _ = q.do(http.MethodGet, measure.PathSchedule, nil, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("other probe with p's ETag: status %d, want 200", resp.StatusCode)
	}

	good := identityResult("k-root/identity/4", "198.18.53.53", 4, measure.Identity{HostnameBind: "ns1.ams.k.example"})
	ping := pingResult("k-root/ping/6", "2001:db8:53:0::53", 6)
	wrongKind := pingResult("k-root/identity/4", "198.18.53.53", 4)
	unscheduled := pingResult("x-root/ping/4", "198.18.53.53", 4)
	wrongDst := pingResult("k-root/ping/4", "198.18.0.1", 4)
	invalid := pingResult("k-root/ping/4", "198.18.53.53", 4)
	invalid.V = 99
	spoof := identityResult("k-root/identity/4", "198.18.53.53", 4, measure.Identity{NSID: "k-fra-1"})
	spoof.Probe = "p-someoneelse"
	lines := [][]byte{
		line(t, good),
		[]byte(`{"v":1,"id":`), // malformed
		line(t, ping),
		[]byte(""), // blank: counted, no verdict
		line(t, wrongKind),
		line(t, unscheduled),
		line(t, wrongDst),
		line(t, invalid),
		[]byte(`"` + strings.Repeat("a", 2<<20) + `"`), // longer than MaxLine
		line(t, good), // repeated in the same upload
		line(t, spoof),
	}
	resp, ur := p.upload(lines, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: status %d", resp.StatusCode)
	}
	wantV := []struct {
		line    int
		verdict measure.Verdict
		reason  string
	}{
		{1, measure.Accepted, ""},
		{2, measure.Rejected, "malformed json"},
		{3, measure.Accepted, ""},
		{5, measure.Rejected, "kind \"ping\" does not match"},
		{6, measure.Rejected, "not scheduled"},
		{7, measure.Rejected, "dst 198.18.0.1"},
		{8, measure.Rejected, "unsupported format version"},
		{9, measure.Rejected, "line longer than"},
		{10, measure.Duplicate, "repeated"},
		{11, measure.Accepted, ""},
	}
	if len(ur.Lines) != len(wantV) {
		t.Fatalf("got %d verdicts, want %d: %+v", len(ur.Lines), len(wantV), ur.Lines)
	}
	for i, w := range wantV {
		g := ur.Lines[i]
		if g.Line != w.line || g.Verdict != w.verdict || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("line %d: got %d %s %q, want %d %s containing %q", i, g.Line, g.Verdict, g.Reason, w.line, w.verdict, w.reason)
		}
	}
	if ur.Accepted != 3 || ur.Duplicate != 1 || ur.Rejected != 6 {
		t.Errorf("counts %d/%d/%d, want 3/1/6", ur.Accepted, ur.Duplicate, ur.Rejected)
	}
	if n := e.store.count(); n != 3 {
		t.Errorf("stored %d results, want 3", n)
	}
	row := e.store.results[spoof.ID]
	if row.Result.Probe != p.id || row.Result.Target != "k-root" || row.TargetID != 1 {
		t.Errorf("spoofed probe stored as %q/%q/%d, want %q/k-root/1", row.Result.Probe, row.Result.Target, row.TargetID, p.id)
	}
	if row.State != catchment.StateSite || row.Site != "fra" {
		t.Errorf("nsid-only identity: %s %q, want site fra", row.State, row.Site)
	}
	pr := e.store.results[ping.ID]
	if pr.RTT == nil || *pr.RTT != 9.5 || pr.Loss == nil || *pr.Loss < 0.33 || *pr.Loss > 0.34 || pr.State != "" {
		t.Errorf("ping row rtt %v loss %v state %q", pr.RTT, pr.Loss, pr.State)
	}

	// The same upload again: nothing new.
	resp, ur = p.upload([][]byte{line(t, good), line(t, ping)}, false)
	if resp.StatusCode != http.StatusOK || ur.Duplicate != 2 || ur.Accepted != 0 {
		t.Errorf("re-upload: status %d, %+v; want 2 duplicates", resp.StatusCode, ur)
	}
}

func TestClassify(t *testing.T) {
	tg := testTarget()
	idf, err := catchment.NewIdentifier(tg.IdentityOrder, tg.Rules)
	if err != nil {
		t.Fatal(err)
	}
	unreach := identityResult("m", "198.18.53.53", 4, measure.Identity{})
	unreach.DNS.Exchanges[0].Error = "timeout"
	unreach.DNS.Identity = nil
	probeErr := &measure.Result{Kind: measure.KindIdentity, Error: "no route"}
	tests := []struct {
		name       string
		r          *measure.Result
		state      catchment.State
		site, iden string
	}{
		{"hostname.bind regex", identityResult("m", "198.18.53.53", 4, measure.Identity{HostnameBind: "ns3.lhr.k.example"}), catchment.StateSite, "lhr", "ns3.lhr.k.example"},
		{"nsid only", identityResult("m", "198.18.53.53", 4, measure.Identity{NSID: "k-fra-1"}), catchment.StateSite, "fra", "k-fra-1"},
		{"no rule matches", identityResult("m", "198.18.53.53", 4, measure.Identity{HostnameBind: "mystery-7"}), catchment.StateUnidentified, "", "mystery-7"},
		{"answer without identity", identityResult("m", "198.18.53.53", 4, measure.Identity{}), catchment.StateUnidentified, "", ""},
		{"timeout", unreach, catchment.StateUnreachable, "", ""},
		{"probe error", probeErr, catchment.StateUnreachable, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, site, iden := collector.Classify(idf, tt.r)
			if st != tt.state || site != tt.site || iden != tt.iden {
				t.Errorf("got %s %q %q, want %s %q %q", st, site, iden, tt.state, tt.site, tt.iden)
			}
		})
	}
}

func TestAuthRefused(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	q := e.probe(t)

	// q signs with its key but claims to be p.
	imp := *q
	imp.id = p.id
	if resp, b := imp.do(http.MethodGet, measure.PathSchedule, nil, nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `"unauthorized"`) {
		t.Errorf("other probe's credential: %d %s, want 401 JSON", resp.StatusCode, b)
	}
	// Unknown probe.
	unk := *q
	unk.id = "p-nobody"
	if resp, _ := unk.do(http.MethodGet, measure.PathSchedule, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown probe: %d, want 401", resp.StatusCode)
	}
	// Clock too far off.
	skew := *p
	skew.now = func() time.Time { return time.Now().Add(-time.Hour) }
	if resp, b := skew.do(http.MethodGet, measure.PathSchedule, nil, nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "clock") {
		t.Errorf("skewed clock: %d %s, want 401 mentioning the clock", resp.StatusCode, b)
	}
	// Body tampered after signing: sign one body, send another.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+measure.PathResults, strings.NewReader("{}"))
	measure.SignRequest(req.Header, p.key, p.id, http.MethodPost, measure.PathResults, []byte("[]"), time.Now())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tampered body: %v %v, want 401", resp.StatusCode, err)
	}
	// Disabled probe.
	e.store.mu.Lock()
	k := e.store.probes[q.id]
	k.Disabled = true
	e.store.probes[q.id] = k
	e.store.mu.Unlock()
	// The key cache holds q's key for KeyCacheTTL: use a new collector view.
	e2 := newEnvWith(t, e.store)
	q.url = e2.srv.URL
	if resp, b := q.do(http.MethodGet, measure.PathSchedule, nil, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "disabled") {
		t.Errorf("disabled probe: %d %s, want 403", resp.StatusCode, b)
	}
}

func newEnvWith(t *testing.T, fs *fakeStore) *env {
	c, err := collector.New(collector.Config{Store: fs, RefreshEvery: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	srv := newServer(c.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return &env{c: c, store: fs, srv: srv}
}

func TestEnrollmentTokens(t *testing.T) {
	e := newEnv(t, func(c *collector.Config) { c.Limits.PerAddr = -1 })
	tokens := collector.Tokens{Store: e.store}
	ctx := context.Background()
	_, single, _ := tokens.Create(ctx, collector.TokenOptions{MaxUses: 1})
	now := time.Now()
	tokens.Now = func() time.Time { return now.Add(-2 * time.Hour) }
	_, expired, _ := tokens.Create(ctx, collector.TokenOptions{TTL: time.Hour})
	tokens.Now = nil
	revTok, revoked, _ := tokens.Create(ctx, collector.TokenOptions{})
	if err := tokens.Revoke(ctx, revTok.ID); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Revoke(ctx, 9999); !errors.Is(err, collector.ErrUnknownToken) {
		t.Errorf("revoke unknown: %v, want ErrUnknownToken", err)
	}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"single-use first", single, http.StatusCreated},
		{"single-use second", single, http.StatusUnauthorized},
		{"expired", expired, http.StatusUnauthorized},
		{"revoked", revoked, http.StatusUnauthorized},
		{"garbage", "act_nope", http.StatusUnauthorized},
	} {
		if code, b := newProbe(t, e.srv.URL).enroll(tc.token); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, b, tc.want)
		}
	}
}

func TestSybilCap(t *testing.T) {
	e := newEnv(t, func(c *collector.Config) { c.Limits.PerAddr = 2 })
	for i := 0; i < 2; i++ {
		e.probe(t)
	}
	code, b := newProbe(t, e.srv.URL).enroll(e.tok)
	if code != http.StatusForbidden || !strings.Contains(string(b), "too many") {
		t.Errorf("third probe from one address: %d %s, want 403", code, b)
	}
}

func TestStoreDown(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	e.store.mu.Lock()
	e.store.ingest = func(context.Context, []collector.Row) ([]bool, error) { return nil, errors.New("connection refused") }
	e.store.mu.Unlock()
	r := pingResult("k-root/ping/4", "198.18.53.53", 4)
	resp, _ := p.upload([][]byte{line(t, r), []byte("junk")}, false)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store down: status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	e.store.mu.Lock()
	e.store.ingest = nil
	e.store.mu.Unlock()
	resp, ur := p.upload([][]byte{line(t, r)}, false)
	if resp.StatusCode != http.StatusOK || ur.Accepted != 1 {
		t.Errorf("after recovery: %d %+v, want 1 accepted", resp.StatusCode, ur)
	}
}

func TestOverloaded(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, func(c *collector.Config) { c.MaxQueuedRows = 1 })
	p := e.probe(t)
	var once sync.Once
	entered := make(chan struct{})
	e.store.mu.Lock()
	e.store.ingest = func(ctx context.Context, rows []collector.Row) ([]bool, error) {
		once.Do(func() { close(entered) })
		<-release
		return make([]bool, len(rows)), nil
	}
	e.store.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.upload([][]byte{line(t, pingResult("k-root/ping/4", "198.18.53.53", 4))}, false)
	}()
	<-entered
	resp, _ := p.upload([][]byte{line(t, pingResult("k-root/ping/4", "198.18.53.53", 4))}, false)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("queue full: %d, want 429 with Retry-After", resp.StatusCode)
	}
	close(release)
	wg.Wait()
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	hb, _ := json.Marshal(measure.Heartbeat{Version: "1.2", SpoolDepth: 7, Location: &measure.Location{Lat: 52.1, Lon: 5.1}})
	if resp, b := p.do(http.MethodPost, measure.PathHeartbeat, hb, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, b)
	}
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	if len(e.store.beats) != 1 || e.store.beats[0].ProbeID != p.id || e.store.beats[0].Heartbeat.SpoolDepth != 7 || !e.store.beats[0].Src.IsLoopback() {
		t.Errorf("heartbeat stored as %+v", e.store.beats)
	}
}

// TestReplayRefused is the regression test for finding 6: a captured
// signed request sent again verbatim (same headers, same body, well inside
// the clock-skew window) is refused, and a signature does not cover a
// query string it was not made for. The old collector accepted both.
func TestReplayRefused(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	body := []byte(`{"version":"test","capabilities":{},"spool_depth":0,"dropped":0}`)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+measure.PathHeartbeat, bytes.NewReader(body))
	measure.SignRequest(req.Header, p.key, p.id, http.MethodPost, measure.PathHeartbeat, body, time.Now())
	send := func() (int, string) {
		r2, _ := http.NewRequest(http.MethodPost, e.srv.URL+measure.PathHeartbeat, bytes.NewReader(body))
		r2.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(r2)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, b := send(); st/100 != 2 {
		t.Fatalf("first request: %d %s, want 2xx", st, b)
	}
	if st, b := send(); st != http.StatusUnauthorized || !strings.Contains(b, "replay") {
		t.Fatalf("identical second request: %d %s, want 401 naming the replay", st, b)
	}

	// Signed for the bare path, sent with a query appended.
	q, _ := http.NewRequest(http.MethodGet, e.srv.URL+measure.PathSchedule+"?probe=other", nil)
	measure.SignRequest(q.Header, p.key, p.id, http.MethodGet, measure.PathSchedule, nil, time.Now())
	resp, err := http.DefaultClient.Do(q)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("query not covered by the signature: %d, want 401", resp.StatusCode)
	}
	// An old (v1) probe sends no nonce: refused, told to upgrade.
	old, _ := http.NewRequest(http.MethodGet, e.srv.URL+measure.PathSchedule, nil)
	measure.SignRequest(old.Header, p.key, p.id, http.MethodGet, measure.PathSchedule, nil, time.Now())
	old.Header.Del(measure.HeaderNonce)
	if resp, err = http.DefaultClient.Do(old); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "upgrade") {
		t.Errorf("request without a nonce: %d %s, want 401 asking for an upgrade", resp.StatusCode, b)
	}
	// Signed with its query: accepted.
	q, _ = http.NewRequest(http.MethodGet, e.srv.URL+measure.PathSchedule+"?probe=other", nil)
	measure.SignRequest(q.Header, p.key, p.id, http.MethodGet, measure.PathSchedule+"?probe=other", nil, time.Now())
	if resp, err = http.DefaultClient.Do(q); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("query covered by the signature: %d, want 200", resp.StatusCode)
	}
}
