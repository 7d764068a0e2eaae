package pgstore_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/anycatch/anycatch/alert"
	"github.com/anycatch/anycatch/alert/pgstore"
	"github.com/anycatch/anycatch/alert/service"
	"github.com/anycatch/anycatch/alert/webhook"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// hook is a loopback webhook receiver answering codes in turn (the last
// repeats).
type hook struct {
	*httptest.Server
	mu     sync.Mutex
	codes  []int
	bodies [][]byte
	hdrs   []http.Header
}

func newHook(t *testing.T, codes ...int) *hook {
	h := &hook{codes: codes}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		code := h.codes[min(len(h.bodies), len(h.codes)-1)]
		h.bodies, h.hdrs = append(h.bodies, b), append(h.hdrs, r.Header.Clone())
		h.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

type fixture struct {
	db     *store.DB
	svc    *service.Service
	target *store.Target
	now    time.Time
}

func setup(t testing.TB) *fixture {
	ctx := context.Background()
	db, err := store.Open(ctx, pgtest.NewURL(t), store.Options{MaxConns: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	tg := &store.Target{Name: "lab", Addr4: "198.18.53.53", IntervalSec: 10, Enabled: true}
	if err := db.CreateTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ams", "nrt"} {
		if err := db.PutSite(ctx, tg.ID, store.Site{Code: s}); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{db: db, target: tg, now: time.Now().UTC().Truncate(time.Second)}
	f.svc = service.New(service.Config{Store: pgstore.Store{DB: db}, Now: func() time.Time { return f.now },
		BaseURL: "https://anycatch.example.net", Log: slog.New(slog.DiscardHandler),
		Webhook: webhook.Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}})
	return f
}

// place sets probe's current catchment (IPv4) as the collector would:
// catchment_latest, and a catchment_changes row when it moved.
func (f *fixture) place(t *testing.T, probe, site string, rtt float64, moved string) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.db.Pool().Exec(ctx, `INSERT INTO catchment_latest (target_id, probe_id, af, state, site, rtt_ms, observed_at, since, result_id)
		VALUES ($1, $2, 4, 'site', $3, $4, $5, $5, gen_random_uuid())
		ON CONFLICT (target_id, probe_id, af) DO UPDATE SET site = $3, rtt_ms = $4, observed_at = $5`,
		f.target.ID, probe, site, rtt, f.now); err != nil {
		t.Fatal(err)
	}
	if moved != "" {
		if _, err := f.db.Pool().Exec(ctx, `INSERT INTO catchment_changes (target_id, ts, probe_id, af, from_state, from_site, to_state, to_site, result_id)
			VALUES ($1, $2, $3, 4, 'site', $4, 'site', $5, gen_random_uuid())`, f.target.ID, f.now, probe, moved, site); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServiceFiresResolvesAndDelivers(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	rcv := newHook(t, 500, 200)
	w, err := f.svc.CreateWebhook(ctx, alert.Webhook{Name: "ops", URL: rcv.URL, AllowPrivate: true, Enabled: true, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Secret) != 64 {
		t.Fatalf("generated secret %q", w.Secret)
	}
	if _, err := f.svc.CreateRule(ctx, alert.Rule{Target: "lab", Kind: alert.KindSiteLost, MinProbes: 2, ResolveSec: -1, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateRule(ctx, alert.Rule{Target: "nope", Kind: alert.KindSiteLost}); err == nil {
		t.Error("rule for a missing target accepted")
	}

	f.place(t, "p1", "ams", 10, "")
	f.place(t, "p2", "ams", 12, "")
	f.place(t, "p3", "nrt", 90, "")
	tick := func() {
		t.Helper()
		if err := f.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		f.svc.Wait()
	}
	tick()
	// ams withdrawn: both its probes move to nrt.
	f.now = f.now.Add(10 * time.Second)
	f.place(t, "p1", "nrt", 95, "ams")
	f.place(t, "p2", "nrt", 96, "ams")
	f.place(t, "p3", "nrt", 90, "")
	tick()

	firing, err := f.svc.Alerts(ctx, alert.AlertQuery{Status: alert.StatusFiring})
	if err != nil || len(firing) != 1 || firing[0].Subject != "ams" || firing[0].Kind != alert.KindSiteLost {
		t.Fatalf("firing alerts %+v, %v", firing, err)
	}
	// The receiver answered 500 first, then 200: two attempts, logged.
	if len(rcv.bodies) != 2 {
		t.Fatalf("receiver got %d requests, want 2 (500 then 200)", len(rcv.bodies))
	}
	ds, err := f.svc.Deliveries(ctx, w.ID, 0)
	if err != nil || len(ds) != 1 || ds[0].State != alert.DeliveryDelivered || ds[0].Attempts != 2 || ds[0].LastStatus != 200 {
		t.Fatalf("delivery log %+v, %v", ds, err)
	}
	var p service.Payload
	if err := json.Unmarshal(rcv.bodies[1], &p); err != nil {
		t.Fatal(err)
	}
	if p.Event != alert.StatusFiring || p.Alert.Target != "lab" || p.Alert.Subject != "ams" || len(p.Alert.Sites) != 2 ||
		!strings.HasPrefix(p.Links.Map, "https://anycatch.example.net/#/map?") || len(p.Alert.Probes) != 2 {
		t.Errorf("payload %+v", p)
	}
	ts := rcv.hdrs[1].Get(webhook.HeaderTimestamp)
	if got, want := rcv.hdrs[1].Get(webhook.HeaderSignature), "sha256="+independentHMAC(t, w.Secret, append([]byte(ts+"."+rcv.hdrs[1].Get(webhook.HeaderDelivery)+"."+rcv.hdrs[1].Get(webhook.HeaderEvent)+"."), rcv.bodies[1]...)); got != want {
		t.Errorf("signature %s, independent HMAC %s", got, want)
	}

	// Metrics parse with the Prometheus text parser and carry the counts.
	fams := scrape(t, f.svc)
	if v := sample(fams, "anycatch_catchment_probes", map[string]string{"target": "lab", "site": "nrt", "af": "4"}); v != 3 {
		t.Errorf("nrt probes %v, want 3", v)
	}
	if v := sample(fams, "anycatch_catchment_probes", map[string]string{"target": "lab", "site": "ams", "af": "4"}); v != 0 {
		t.Errorf("ams probes %v, want 0 (a lost configured site stays a series)", v)
	}
	if v := sample(fams, "anycatch_catchment_share_ratio", map[string]string{"target": "lab", "site": "nrt", "af": "4"}); v != 1 {
		t.Errorf("nrt share %v, want 1", v)
	}
	if v := sample(fams, "anycatch_catchment_probes_lost_total", map[string]string{"target": "lab", "site": "ams", "af": "4"}); v != 2 {
		t.Errorf("ams lost %v, want 2", v)
	}
	if v := sample(fams, "anycatch_catchment_rtt_median_seconds", map[string]string{"target": "lab", "site": "nrt", "af": "4"}); v < 0.0949 || v > 0.0951 {
		t.Errorf("nrt median RTT %v s, want 0.095", v)
	}
	if v := sample(fams, "anycatch_alerts_firing", map[string]string{"target": "lab", "kind": "site_lost"}); v != 1 {
		t.Errorf("firing gauge %v, want 1", v)
	}

	// Restored: resolved, notified.
	f.now = f.now.Add(10 * time.Second)
	f.place(t, "p1", "ams", 10, "nrt")
	tick()
	all, _ := f.svc.Alerts(ctx, alert.AlertQuery{})
	if len(all) != 1 || all[0].Status != alert.StatusResolved || all[0].ResolvedAt == nil {
		t.Fatalf("alerts after restore %+v", all)
	}
	// The history keeps what happened when it fired.
	if all[0].Summary != firing[0].Summary || len(all[0].Sites) != 2 || all[0].Sites[1].AfterProbes != 0 {
		t.Errorf("resolved alert in the history %+v, want the firing-time summary and sites", all[0])
	}
	if len(rcv.bodies) != 3 || rcv.hdrs[2].Get(webhook.HeaderEvent) != "resolved" {
		t.Errorf("resolved notification missing: %d requests", len(rcv.bodies))
	}

	// A delivery left pending by an earlier run (stopped after 2 of its
	// 3 attempts) is resumed by a new service: one more attempt, the
	// stored payload, the count continued.
	stale := alert.Delivery{WebhookID: w.ID, Event: alert.StatusFiring, Payload: []byte(`{"resumed":true}`)}
	st := pgstore.Store{DB: f.db}
	if err := st.CreateDelivery(ctx, &stale); err != nil {
		t.Fatal(err)
	}
	stale.State, stale.Attempts, stale.LastStatus, stale.LastError = alert.DeliveryPending, 2, 500, "attempt 2: receiver answered 500"
	if err := st.UpdateDelivery(ctx, &stale); err != nil {
		t.Fatal(err)
	}
	f.svc = service.New(service.Config{Store: st, Now: func() time.Time { return f.now }, Log: slog.New(slog.DiscardHandler)})
	tick()
	ds, _ = f.svc.Deliveries(ctx, w.ID, 1)
	if len(ds) != 1 || ds[0].ID != stale.ID || ds[0].State != alert.DeliveryDelivered || ds[0].Attempts != 3 {
		t.Errorf("resumed delivery after a restart: %+v", ds)
	}
	if n := len(rcv.bodies); n != 4 || string(rcv.bodies[3]) != `{"resumed":true}` {
		t.Fatalf("receiver got %d requests, last %q; want the stored payload resent", n, rcv.bodies[n-1])
	}
	rcv.bodies, rcv.hdrs = rcv.bodies[:3], rcv.hdrs[:3]

	// A steady catchment sends nothing more.
	f.now = f.now.Add(10 * time.Second)
	tick()
	if len(rcv.bodies) != 3 {
		t.Errorf("steady catchment sent %d notifications", len(rcv.bodies)-3)
	}
}

func TestServiceGivesUpAndTestSend(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	rcv := newHook(t, 502)
	w, err := f.svc.CreateWebhook(ctx, alert.Webhook{URL: rcv.URL, AllowPrivate: true, Enabled: true, MaxAttempts: 3, Secret: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.TestWebhook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A test send is one attempt: the admin sees the failure at once.
	if d.State != alert.DeliveryFailed || d.Attempts != 1 || d.LastStatus != 502 || !strings.Contains(d.LastError, "502") {
		t.Errorf("test delivery %+v", d)
	}
	// Alerts go through every attempt, then the log says why it stopped.
	if _, err := f.svc.CreateRule(ctx, alert.Rule{Target: "lab", Kind: alert.KindUnreachable, Threshold: 10, MinProbes: 1, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	f.place(t, "p1", "ams", 10, "")
	if _, err := f.db.Pool().Exec(ctx, `INSERT INTO catchment_latest (target_id, probe_id, af, state, observed_at, since, result_id)
		VALUES ($1, 'p9', 4, 'unreachable', $2, $2, gen_random_uuid())`, f.target.ID, f.now); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	f.svc.Wait()
	ds, _ := f.svc.Deliveries(ctx, w.ID, 0)
	if len(ds) != 2 {
		t.Fatalf("deliveries %+v, want the test and the alert", ds)
	}
	if a := ds[0]; a.Event != alert.StatusFiring || a.State != alert.DeliveryFailed || a.Attempts != 3 || !strings.Contains(a.LastError, "gave up after 3 attempts") {
		t.Errorf("alert delivery %+v: want failed after 3 attempts with the reason", a)
	}
	if len(rcv.bodies) != 4 {
		t.Errorf("receiver got %d requests, want 1 test + 3 attempts", len(rcv.bodies))
	}

	// Without the per-endpoint allow, a loopback endpoint is refused at
	// dial time and never reached.
	g, err := f.svc.CreateWebhook(ctx, alert.Webhook{URL: rcv.URL, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	n := len(rcv.bodies)
	d, err = f.svc.TestWebhook(ctx, g.ID)
	if err != nil || d.State != alert.DeliveryFailed || !strings.Contains(d.LastError, "not allowed for webhooks") || len(rcv.bodies) != n {
		t.Errorf("guarded test send: %+v, %v (receiver requests %d -> %d)", d, err, n, len(rcv.bodies))
	}
	hooks, _ := f.svc.Webhooks(ctx)
	for _, h := range hooks {
		if h.Secret != "" {
			t.Errorf("listing shows webhook %d's secret", h.ID)
		}
	}
}

func scrape(t *testing.T, svc *service.Service) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	svc.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics/catchment", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, rec.Body.String())
	}
	return fams
}

// sample returns the value of the series of family name with labels, or
// -1 when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// independentHMAC computes hex HMAC-SHA256 with openssl, not Go's crypto.
func independentHMAC(t *testing.T, key string, msg []byte) string {
	t.Helper()
	cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", key, "-r")
	cmd.Stdin = strings.NewReader(string(msg))
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("openssl unavailable to check the signature independently: %v", err)
	}
	return strings.Fields(string(out))[0]
}

func TestServiceResumesDeliveriesAfterShutdown(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rcv := newHook(t, 503, 200)
	st := pgstore.Store{DB: f.db}
	// The server shuts down during the backoff after the first attempt.
	svc := service.New(service.Config{Store: st, Now: func() time.Time { return f.now }, Log: slog.New(slog.DiscardHandler),
		Webhook: webhook.Options{Sleep: func(context.Context, time.Duration) error { cancel(); return context.Canceled }}})
	w, err := svc.CreateWebhook(ctx, alert.Webhook{URL: rcv.URL, AllowPrivate: true, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateRule(ctx, alert.Rule{Target: "lab", Kind: alert.KindUnreachable, Threshold: 10, MinProbes: 1, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	f.place(t, "p1", "ams", 10, "")
	if _, err := f.db.Pool().Exec(ctx, `INSERT INTO catchment_latest (target_id, probe_id, af, state, observed_at, since, result_id)
		VALUES ($1, 'p9', 4, 'unreachable', $2, $2, gen_random_uuid())`, f.target.ID, f.now); err != nil {
		t.Fatal(err)
	}
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	svc.Wait()
	bg := context.Background()
	ds, _ := svc.Deliveries(bg, w.ID, 0)
	if len(ds) != 1 || ds[0].State != alert.DeliveryPending || ds[0].Attempts != 1 || !strings.Contains(ds[0].LastError, "retries resume") {
		t.Fatalf("delivery after a shutdown mid-retry: %+v", ds)
	}
	// The next start resumes it: attempt 2 reaches the receiver.
	next := service.New(service.Config{Store: st, Now: func() time.Time { return f.now }, Log: slog.New(slog.DiscardHandler)})
	if err := next.Tick(bg); err != nil {
		t.Fatal(err)
	}
	next.Wait()
	ds, _ = next.Deliveries(bg, w.ID, 0)
	if len(ds) != 1 || ds[0].State != alert.DeliveryDelivered || ds[0].Attempts != 2 || len(rcv.bodies) != 2 || string(rcv.bodies[0]) != string(rcv.bodies[1]) {
		t.Errorf("resumed delivery %+v, receiver got %d requests", ds, len(rcv.bodies))
	}
	if rcv.hdrs[0].Get(webhook.HeaderDelivery) != rcv.hdrs[1].Get(webhook.HeaderDelivery) {
		t.Errorf("the resumed attempt has another delivery id: %s, %s", rcv.hdrs[0].Get(webhook.HeaderDelivery), rcv.hdrs[1].Get(webhook.HeaderDelivery))
	}
}
