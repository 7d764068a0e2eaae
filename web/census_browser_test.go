package web_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/internal/browsertest"
	"github.com/anycatch/anycatch/store"
	"github.com/anycatch/anycatch/web"
)

// seedCensus stores one census round of the world's target: as many /24s
// per city as its weight, each caught by the site nearest to the city,
// with the city's location, country and ASN.
func seedCensus(t *testing.T, w *world) (want map[string]int) {
	t.Helper()
	ctx := context.Background()
	tg, err := w.db.GetTarget(ctx, w.target)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.db.SetCensusConfig(ctx, store.CensusConfig{TargetID: tg.ID, Enabled: true, MaxPPS: 100}); err != nil {
		t.Fatal(err)
	}
	tok := sha256.Sum256([]byte("acs_test"))
	if err := w.db.IssueSiteToken(ctx, tg.ID, "ams", tok); err != nil {
		t.Fatal(err)
	}
	if err := w.db.EnrollSite(ctx, store.SiteEnrollment{TokenHash: tok, ProbeID: "p-site-ams", PublicKey: make([]byte, 32), Now: w.now}); err != nil {
		t.Fatal(err)
	}
	r := &store.CensusRound{TargetID: tg.ID, Sender: "ams", Hitlist: "test", RatePPS: 100, Prefix4: 24, Prefix6: 48,
		Secret: make([]byte, 16), Start: w.now.Add(-time.Hour), Closes: w.now.Add(-50 * time.Minute), LateUntil: w.now}
	if err := w.db.CreateCensusRound(ctx, r); err != nil {
		t.Fatal(err)
	}
	want = map[string]int{} // "site/country" -> networks
	var rows []store.CensusReply
	for i, c := range cities {
		for k := range c.weight {
			a := netip.AddrFrom4([4]byte{198, byte(18 + k%2), byte(i*4 + k/2), 1}) // a /24 of its own
			p, _ := a.Prefix(24)
			site := nearest(c.lat, c.lon).code
			lat, lon := c.lat, c.lon
			asn := c.asn
			rows = append(rows, store.CensusReply{Round: r.ID, Addr: a, Site: site, Prefix: p, Sent: w.now.Add(-time.Hour),
				Received: w.now.Add(-time.Hour), ASN: &asn, Country: c.cc, Lat: &lat, Lon: &lon})
			want[site+"/"+c.cc]++
		}
	}
	if _, err := w.db.IngestCensusReplies(ctx, rows); err != nil {
		t.Fatal(err)
	}
	// The world's server has no census store: serve one that has.
	st := pgstore.New(w.db)
	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(api.Config{Store: st, Census: st, AnonymousRead: true, AnonymousRatePerMin: 1 << 20}))
	mux.Handle("/", web.Handler())
	w.srv.Config.Handler = mux
	return want
}

// TestBrowserCensus checks the map's census layer: one diamond per (site,
// country) of the census GeoJSON, in the site's colour, hidden and shown by
// its checkbox, next to the probe dots.
func TestBrowserCensus(t *testing.T) {
	browsertest.Require(t)
	w := newWorld(t, 300, 2)
	want := seedCensus(t, w)
	b := newBrowser(t)
	b.Do(t, chromedp.Navigate(w.srv.URL+"/#/map?target="+w.target))
	waitMap(t, b, "")
	b.Do(t, chromedp.WaitVisible(chromedp.CSS(`#census-toggle`)))
	type point struct {
		Site, Country, Color string
		Prefixes             int
	}
	var census struct {
		Round  int64
		Points []point
	}
	census = eval[struct {
		Round  int64
		Points []point
	}](t, b, `window.anycatch.census`)
	m := eval[uiMap](t, b, `window.anycatch.map`)
	if len(census.Points) != len(want) {
		t.Fatalf("census layer drew %d points, want %d (site, country) pairs", len(census.Points), len(want))
	}
	for _, p := range census.Points {
		key := p.Site + "/" + p.Country
		if want[key] != p.Prefixes {
			t.Errorf("%s: %d networks drawn, seeded %d", key, p.Prefixes, want[key])
		}
		if p.Color != m.Colors[p.Site] {
			t.Errorf("%s drawn in %s, the site's probe colour is %s", key, p.Color, m.Colors[p.Site])
		}
	}
	if n := eval[int](t, b, `document.querySelectorAll('#map .census-mark').length`); n != len(want) {
		t.Errorf("%d census marks in the page, want %d", n, len(want))
	}
	if len(m.Dots) == 0 {
		t.Error("the probe layer is gone")
	}
	screenshot(t, b, "map-census")
	b.Do(t, chromedp.Click(chromedp.CSS(`#census-toggle`)))
	if v := eval[string](t, b, `getComputedStyle(document.querySelector('#map .census-layer')).display + '/' + document.getElementById('map').dataset.censusVisible`); v != "none/0" {
		t.Errorf("after unticking: layer %s, want none/0", v)
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`#census-toggle`)))
	if v := eval[string](t, b, `document.getElementById('map').dataset.censusVisible`); v != "1" {
		t.Errorf("after ticking again: visible %s", v)
	}
	if census.Round == 0 {
		t.Error("census layer names no round")
	}
}
