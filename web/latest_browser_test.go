package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/internal/browsertest"
	"github.com/anycatch/anycatch/web"
)

// TestBrowserOpensAtLatestData: when nothing is live (the server's clock a
// week after the last result, as after importing history only), the map
// opens at the target's latest_data_at with a visible note instead of an
// empty "now".
func TestBrowserOpensAtLatestData(t *testing.T) {
	browsertest.Require(t)
	w := newWorld(t, 200, 6)
	later := w.now.Add(7 * 24 * time.Hour)
	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(api.Config{Store: pgstore.New(w.db), AnonymousRead: true, AnonymousRatePerMin: 1 << 20,
		Now: func() time.Time { return later }}))
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	var now struct {
		LatestDataAt string `json:"latest_data_at"`
		Probes       []any  `json:"probes"`
	}
	getJSON(t, srv.URL+"/api/v1/targets/"+w.target+"/catchment", &now)
	if len(now.Probes) != 0 || now.LatestDataAt == "" {
		t.Fatalf("API now: %d probes, latest_data_at %q; want none live and a latest_data_at", len(now.Probes), now.LatestDataAt)
	}

	b := newBrowser(t)
	b.Do(t, chromedp.Navigate(srv.URL+"/#/map?target="+w.target))
	at := waitMap(t, b, "")
	if !sameInstant(at, now.LatestDataAt) {
		t.Errorf("map opened at %s, want latest_data_at %s", at, now.LatestDataAt)
	}
	note := eval[string](t, b, `(() => { const n = document.getElementById('latest-note'); return n && n.offsetParent !== null ? n.innerText : ''; })()`)
	if !strings.Contains(note, "Nothing live") {
		t.Errorf("note = %q, want a visible 'Nothing live' note", note)
	}
	if dots := eval[int](t, b, `window.anycatch.map.dots.length`); dots == 0 {
		t.Errorf("the map at the latest data drew no probe")
	}
	screenshot(t, b, "map-latest-data")
}

func sameInstant(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && ta.Equal(tb)
}
