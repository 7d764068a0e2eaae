package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/anycatch/anycatch/alert"
	alertpg "github.com/anycatch/anycatch/alert/pgstore"
	"github.com/anycatch/anycatch/alert/service"
	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/internal/browsertest"
	"github.com/anycatch/anycatch/web"
)

// TestBrowserAlertsNewKinds: the alerts page shows region_flap,
// speed_of_light and inflation alerts and rules: their labels, a region
// subject as text (not a site chip) and the worst findings of the sample.
func TestBrowserAlertsNewKinds(t *testing.T) {
	browsertest.Require(t)
	w := newWorld(t, 50, 2)
	ctx := context.Background()
	st := alertpg.Store{DB: w.db}
	svc := service.New(service.Config{Store: st})
	tg, err := w.db.GetTarget(ctx, w.target)
	if err != nil {
		t.Fatal(err)
	}
	open := func(r alert.Rule, subject, summary string, probes ...string) {
		t.Helper()
		r.Target, r.Enabled = w.target, true
		r, err := svc.CreateRule(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		a := alert.Alert{RuleID: r.ID, RuleName: r.Name, Kind: r.Kind, TargetID: tg.ID, Target: w.target, AF: 4, Subject: subject,
			Status: alert.StatusFiring, StartedAt: w.now, Value: float64(len(probes)), Threshold: r.Threshold, Summary: summary,
			Sites: []alert.SiteShare{}, Probes: probes}
		if err := st.OpenAlert(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	open(alert.Rule{Kind: alert.KindRegionFlap, Region: alert.RegionCountry, Threshold: 1}, "country:DE",
		"2 probes in country:DE changed site 3 or more times within 10m0s (IPv4)", "p-00001", "p-00002")
	open(alert.Rule{Kind: alert.KindSpeedOfLight, MinProbes: 1}, "",
		"1 (probe, site) pair with results faster than light within 1h0m0s (IPv4)",
		"probe p-00003 -> site ams: 3 of 40 results faster than light (fastest 4.0 ms, 9290 km needs 92.5 ms)")
	open(alert.Rule{Kind: alert.KindInflation, Threshold: 1}, "", "2 probes with an inflated RTT within 1h0m0s (IPv4)",
		"probe p-00004 (EU) -> site syd: 250.0 ms, 240.0 ms over its region baseline via ams (x25.0)", "probe p-00005 (EU) -> site sin: 180.0 ms")

	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(api.Config{Store: pgstore.New(w.db), Alerts: svc, AnonymousRead: true, AnonymousRatePerMin: 1 << 20}))
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := newBrowser(t)
	b.Do(t, chromedp.Navigate(srv.URL+"/#/alerts?target="+w.target), chromedp.WaitVisible(chromedp.CSS(`#alerts-list table`)),
		chromedp.WaitVisible(chromedp.CSS(`#alert-rules table`)))
	list := eval[string](t, b, `document.getElementById('alerts-list').innerText`)
	for _, want := range []string{"country:DE", "probe p-00003 -> site ams: 3 of 40 results faster than light",
		"probe p-00004 (EU) -> site syd", "2 probes in country:DE"} {
		if !strings.Contains(list, want) {
			t.Errorf("alerts list lacks %q:\n%s", want, list)
		}
	}
	if chips := eval[int](t, b, `[...document.querySelectorAll('#alerts-list .chip')].filter(c => c.innerText.includes('country:')).length`); chips != 0 {
		t.Errorf("a region subject drawn as %d site chips", chips)
	}
	rules := eval[string](t, b, `document.getElementById('alert-rules').innerText`)
	for _, want := range []string{"Flapping region (country)", "Faster than light", "Inflated RTTs"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules card lacks %q:\n%s", want, rules)
		}
	}
	screenshot(t, b, "alerts-new-kinds")
}
