package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/anycatch/anycatch/internal/browsertest"
	"github.com/anycatch/anycatch/lab/labstack"
)

// notification is one webhook request the test receiver got.
type notification struct {
	at   time.Time
	hdr  http.Header
	body []byte
	p    struct {
		Event string `json:"event"`
		Alert struct {
			ID      int64  `json:"id"`
			Kind    string `json:"kind"`
			Target  string `json:"target"`
			AF      int    `json:"af"`
			Subject string `json:"subject"`
			Status  string `json:"status"`
			Summary string `json:"summary"`
			Sites   []struct {
				Site         string  `json:"site"`
				BeforeProbes int     `json:"before_probes"`
				AfterProbes  int     `json:"after_probes"`
				BeforeShare  float64 `json:"before_share"`
				AfterShare   float64 `json:"after_share"`
			} `json:"sites"`
			Probes []string `json:"probes"`
		} `json:"alert"`
		Links struct {
			Map string `json:"map"`
		} `json:"links"`
	}
}

// hookReceiver is the operator's webhook endpoint: a plain HTTP server on
// loopback (the test allows loopback for this endpoint explicitly).
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []notification
	seen chan struct{}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{seen: make(chan struct{}, 100)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := notification{at: time.Now(), hdr: r.Header.Clone()}
		n.body, _ = io.ReadAll(r.Body)
		if err := json.Unmarshal(n.body, &n.p); err != nil {
			t.Errorf("webhook body is not the payload: %v: %s", err, n.body)
		}
		h.mu.Lock()
		h.got = append(h.got, n)
		h.mu.Unlock()
		select {
		case h.seen <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

// wait returns the first notification after since matching ok, or fails
// after limit.
func (h *hookReceiver) wait(t *testing.T, since time.Time, limit time.Duration, what string, ok func(notification) bool) notification {
	t.Helper()
	deadline := time.After(limit)
	for {
		h.mu.Lock()
		for _, n := range h.got {
			if n.at.After(since) && ok(n) {
				h.mu.Unlock()
				return n
			}
		}
		var all []string
		for _, n := range h.got {
			all = append(all, fmt.Sprintf("%s %s %s/%d", n.p.Event, n.p.Alert.Kind, n.p.Alert.Subject, n.p.Alert.AF))
		}
		h.mu.Unlock()
		select {
		case <-h.seen:
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s notification within %s; got %v", what, limit, all)
		}
	}
}

// find returns the first notification after since matching ok.
func (h *hookReceiver) find(since time.Time, ok func(notification) bool) (notification, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.got {
		if n.at.After(since) && ok(n) {
			return n, true
		}
	}
	return notification{}, false
}

// verifySignature recomputes the signature with openssl, independently of
// the server's Go code.
func verifySignature(t *testing.T, secret string, n notification) {
	t.Helper()
	ts := n.hdr.Get("X-Anycatch-Timestamp")
	cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", secret, "-r")
	signed := ts + "." + n.hdr.Get("X-Anycatch-Delivery") + "." + n.hdr.Get("X-Anycatch-Event") + "."
	cmd.Stdin = bytes.NewReader(append([]byte(signed), n.body...))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	want := "sha256=" + strings.Fields(string(out))[0]
	if got := n.hdr.Get("X-Anycatch-Signature"); got != want {
		t.Errorf("signature %q, openssl HMAC-SHA256 over timestamp.delivery.event.body gives %q", got, want)
	}
	var sec int64
	if _, err := fmt.Sscan(ts, &sec); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("timestamp header %q is not the sending time", ts)
	}
}

// TestAlertsEndToEnd withdraws a site in the lab and expects the webhook
// receiver to get a signed "site lost" alert within one measurement
// interval + 30 s, and a resolved notification after the restore.
func TestAlertsEndToEnd(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// The server reads its flags from the environment too: evaluate
	// every 3 s so the alert latency is dominated by the measurement
	// interval, as it is with the default 10 s and a 5-minute interval.
	t.Setenv("ANYCATCH_ALERT_INTERVAL", "3s")

	s := startStack(ctx, t, "a", labstack.Options{})
	rcv := newHookReceiver(t)
	const secret = "e2e-webhook-secret-0123456789"
	var hook struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	if err := s.Post(ctx, "/api/v1/alerts/webhooks", map[string]any{
		"name": "e2e receiver", "url": rcv.URL + "/hook", "secret": secret, "allow_private": true,
	}, &hook); err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	for _, rule := range []map[string]any{
		{"target": s.Target, "name": "site lost", "kind": "site_lost", "af": 4, "min_probes": 1, "resolve_sec": 5},
		{"target": s.Target, "name": "share moved", "kind": "share_change", "af": 4, "threshold": 10, "min_probes": 1, "window_sec": 30, "resolve_sec": 5},
	} {
		if err := s.Post(ctx, "/api/v1/alerts/rules", rule, nil); err != nil {
			t.Fatalf("create rule: %v", err)
		}
	}
	var test struct {
		State string `json:"state"`
	}
	if err := s.Post(ctx, fmt.Sprintf("/api/v1/alerts/webhooks/%d/test", hook.ID), nil, &test); err != nil || test.State != "delivered" {
		t.Fatalf("send test: %+v, %v", test, err)
	}
	verifySignature(t, secret, rcv.wait(t, time.Time{}, 10*time.Second, "test", func(n notification) bool { return n.p.Event == "test" }))

	_, _ = waitCatchment(ctx, t, s, 4, 90*time.Second)
	exp, err := s.Expect(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	site := busiestSite(exp)
	affected := clientsOf(exp, site)
	// Let the evaluator see the settled catchment for a whole share_change
	// window (30 s): it compares the share now with the share a window ago.
	time.Sleep(35 * time.Second)

	t.Logf("withdrawing %s (serves %v)", site, affected)
	withdrawAt := time.Now()
	if err := s.Lab.Withdraw(ctx, site); err != nil {
		t.Fatalf("withdraw %s: %v", site, err)
	}
	limit := time.Duration(interval)*time.Second + 30*time.Second
	fired := rcv.wait(t, withdrawAt, limit, "site_lost firing for "+site, func(n notification) bool {
		return n.p.Event == "firing" && n.p.Alert.Kind == "site_lost" && n.p.Alert.Subject == site
	})
	t.Logf("ALERT LATENCY: site_lost firing for %s received %s after the withdraw (limit %s = interval + 30 s): %s",
		site, fired.at.Sub(withdrawAt).Round(time.Millisecond), limit, fired.p.Alert.Summary)
	verifySignature(t, secret, fired)
	if fired.p.Alert.Target != s.Target || fired.p.Alert.AF != 4 || !strings.Contains(fired.p.Links.Map, "#/map?") {
		t.Errorf("alert payload %+v", fired.p)
	}
	for _, sh := range fired.p.Alert.Sites {
		if sh.Site == site && (sh.AfterProbes != 0 || sh.BeforeProbes < len(affected)) {
			t.Errorf("site %s in the alert: %+v, want %d probes before and none after", site, sh, len(affected))
		}
	}
	if len(fired.p.Alert.Probes) == 0 {
		t.Errorf("alert names no affected probes")
	}
	// The same withdrawal moves the site's share: a second alert, from the
	// share_change rule (the receiver groups them by alert id as it likes).
	h := rcv.wait(t, withdrawAt, limit, "share_change firing for "+site, func(n notification) bool {
		return n.p.Event == "firing" && n.p.Alert.Kind == "share_change" && n.p.Alert.Subject == site
	})
	t.Logf("ALERT LATENCY: share_change firing for %s received %s after the withdraw: %s", site, h.at.Sub(withdrawAt).Round(time.Millisecond), h.p.Alert.Summary)
	verifySignature(t, secret, h)
	// Probes enrolling at start-up shift shares without moving: no
	// share_change may have fired before the withdrawal.
	if early, ok := rcv.find(time.Time{}, func(n notification) bool {
		return n.p.Event == "firing" && n.p.Alert.Kind == "share_change" && n.at.Before(withdrawAt)
	}); ok {
		t.Errorf("share_change fired before any route moved: %s", early.p.Alert.Summary)
	}

	restoreAt := time.Now()
	if err := s.Lab.Restore(ctx, site); err != nil {
		t.Fatalf("restore %s: %v", site, err)
	}
	resolved := rcv.wait(t, restoreAt, limit+5*time.Second, "site_lost resolved for "+site, func(n notification) bool {
		return n.p.Event == "resolved" && n.p.Alert.Kind == "site_lost" && n.p.Alert.Subject == site
	})
	t.Logf("ALERT LATENCY: site_lost resolved for %s received %s after the restore (rule resolve_sec 5)",
		site, resolved.at.Sub(restoreAt).Round(time.Millisecond))
	verifySignature(t, secret, resolved)
	if resolved.p.Alert.ID != fired.p.Alert.ID {
		t.Errorf("resolved alert %d, fired %d: want the same alert", resolved.p.Alert.ID, fired.p.Alert.ID)
	}

	// The history and the delivery log say the same.
	var alerts struct {
		Data []struct {
			ID      int64  `json:"id"`
			Status  string `json:"status"`
			Subject string `json:"subject"`
			Kind    string `json:"kind"`
		} `json:"data"`
	}
	if err := s.Get(ctx, "/api/v1/alerts?target="+s.Target, &alerts); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range alerts.Data {
		found = found || a.ID == fired.p.Alert.ID && a.Status == "resolved"
	}
	if !found {
		t.Errorf("alert %d not resolved in the history: %+v", fired.p.Alert.ID, alerts.Data)
	}
	var log struct {
		Data []struct {
			Event    string `json:"event"`
			State    string `json:"state"`
			Attempts int    `json:"attempts"`
		} `json:"data"`
	}
	if err := s.Get(ctx, fmt.Sprintf("/api/v1/alerts/webhooks/%d/deliveries", hook.ID), &log); err != nil {
		t.Fatal(err)
	}
	for _, d := range log.Data {
		if d.State != "delivered" || d.Attempts != 1 {
			t.Errorf("delivery %+v, want delivered at the first attempt", d)
		}
	}

	// The catchment metrics parse and count the site's probes again.
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/metrics/catchment", nil)
	req.Header.Set("Authorization", "Bearer "+s.AdminKey) // on the main listener, like /metrics
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics/catchment does not parse: %v", err)
	}
	if f := fams["anycatch_catchment_probes_lost_total"]; f == nil || len(f.GetMetric()) == 0 {
		t.Errorf("no change counters after a withdraw: %v", fams)
	}
	t.Logf("/metrics/catchment: %d families, %d probe-count series", len(fams), len(fams["anycatch_catchment_probes"].GetMetric()))

	screenshotAlerts(t, s, site)
}

// screenshotAlerts opens the web UI's alerts page, checks it lists the
// resolved alert for site and that its "map" link opens the map (live,
// for an alert this recent), and saves screenshots of both.
func screenshotAlerts(t *testing.T, s *labstack.Stack, site string) {
	t.Helper()
	b := browsertest.New(t)
	b.Do(t, chromedp.Navigate(s.URL+"/#/alerts?target="+s.Target), chromedp.WaitVisible(chromedp.CSS(`#alerts-list tbody tr`)))
	type row struct{ Status, Site, Map string }
	rows := browsertest.Eval[[]row](t, b, `[...document.querySelectorAll('#alerts-list tbody tr')].map(tr => ({
		Status: tr.children[0].textContent, Site: tr.children[4].textContent,
		Map: (tr.querySelector('.alert-links a') || {}).getAttribute ? tr.querySelector('.alert-links a').getAttribute('href') : ''}))`)
	var link string
	for _, r := range rows {
		if r.Status == "resolved" && r.Site == site && link == "" {
			link = r.Map
		}
	}
	if link == "" {
		t.Fatalf("alerts page rows %+v: no resolved alert for %s", rows, site)
	}
	// A recent alert links to the live map (the map at a moment reads the
	// 5-minute rollups); an older one to the moment itself.
	if !strings.HasPrefix(link, "#/map?target="+s.Target) || strings.Contains(link, "at=") {
		t.Errorf("map link %s of a minutes-old alert, want the live map of %s", link, s.Target)
	}
	b.Screenshot(t, "e2e-alerts")
	b.Do(t, chromedp.Click(chromedp.CSS(`#alerts-list tbody tr .alert-links a`)))
	deadline := time.Now().Add(30 * time.Second)
	for !browsertest.Eval[bool](t, b, `!!(location.hash.startsWith('#/map?') && document.getElementById('map') && document.getElementById('map').dataset.ready)`) {
		if time.Now().After(deadline) {
			t.Fatalf("the alert's map link did not open the map (hash %s)", browsertest.Eval[string](t, b, `location.hash`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.AssertLocalOnly(t, s.URL)
	b.Screenshot(t, "e2e-alert-map")
}
