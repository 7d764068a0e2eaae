package web_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/anycatch/anycatch/internal/browsertest"
)

// The browser helpers live in internal/browsertest, shared with the
// end-to-end test.
type browser = browsertest.Browser

func newBrowser(t *testing.T) *browser { return browsertest.New(t) }

func eval[T any](t *testing.T, b *browser, expr string) T { return browsertest.Eval[T](t, b, expr) }

func screenshot(t *testing.T, b *browser, name string) { b.Screenshot(t, name) }

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %s: %s", u, res.Status, body)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

type apiCatchment struct {
	At     string `json:"at"`
	Probes []struct {
		Probe string   `json:"probe"`
		State string   `json:"state"`
		Site  string   `json:"site"`
		Lat   *float64 `json:"lat"`
	} `json:"probes"`
	Total struct {
		Probes int `json:"probes"`
		Sites  []struct {
			Site   string  `json:"site"`
			Probes int     `json:"probes"`
			Share  float64 `json:"share"`
		} `json:"sites"`
		Unidentified int `json:"unidentified"`
		Unreachable  int `json:"unreachable"`
	} `json:"total"`
}

type uiMap struct {
	At     string            `json:"at"`
	Colors map[string]string `json:"colors"`
	Dots   []struct {
		Probe string `json:"probe"`
		Site  string `json:"site"`
		State string `json:"state"`
		Color string `json:"color"`
	} `json:"dots"`
}

type legendRow struct {
	Site   string `json:"site"`
	Probes string `json:"probes"`
	Share  string `json:"share"`
}

// checkMap compares what the map drew with the API's catchment at the
// same moment: one dot per probe in the probe's site colour, and the
// legend's numbers equal to the API's aggregate.
func checkMap(t *testing.T, w *world, b *browser, at string) uiMap {
	t.Helper()
	m := eval[uiMap](t, b, `window.anycatch.map`)
	legend := eval[[]legendRow](t, b, `[...document.querySelectorAll('#legend li[data-site]:not(.other)')].map(li => ({site: li.dataset.site, probes: li.dataset.probes, share: li.dataset.share}))`)
	q := url.Values{}
	if at != "" {
		q.Set("at", at)
	}
	var c apiCatchment
	getJSON(t, w.srv.URL+"/api/v1/targets/"+w.target+"/catchment?"+q.Encode(), &c)
	if at != "" && m.At != c.At {
		t.Errorf("map at %s, API at %s", m.At, c.At)
	}
	want := map[string]string{}
	for _, p := range c.Probes {
		if p.Lat != nil {
			want[p.Probe] = p.Site
		}
	}
	if len(m.Dots) != len(want) || len(want) == 0 {
		t.Fatalf("map drew %d dots, API has %d located probes", len(m.Dots), len(want))
	}
	const other = "#9aa4b2"
	for _, d := range m.Dots {
		site, ok := want[d.Probe]
		if !ok {
			t.Errorf("dot for %s, which the API does not list", d.Probe)
			continue
		}
		wantColor := other
		if d.State == "site" {
			wantColor = m.Colors[site]
		}
		if d.Site != site || d.Color != wantColor {
			t.Errorf("dot %s: site %q colour %s, want site %q colour %s", d.Probe, d.Site, d.Color, site, wantColor)
		}
	}
	seen := map[string]string{}
	for s, col := range m.Colors {
		if prev, dup := seen[col]; dup {
			t.Errorf("sites %s and %s share colour %s", prev, s, col)
		}
		seen[col] = s
	}
	if len(legend) != len(c.Total.Sites) {
		t.Fatalf("legend has %d sites, API %d", len(legend), len(c.Total.Sites))
	}
	api := map[string][2]float64{}
	for _, s := range c.Total.Sites {
		api[s.Site] = [2]float64{float64(s.Probes), s.Share}
	}
	for _, l := range legend {
		n, _ := strconv.Atoi(l.Probes)
		share, _ := strconv.ParseFloat(l.Share, 64)
		if a, ok := api[l.Site]; !ok || float64(n) != a[0] || share != a[1] {
			t.Errorf("legend %s: %d probes share %v; API %v", l.Site, n, share, a)
		}
	}
	return m
}

func waitMap(t *testing.T, b *browser, notAt string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		at := eval[string](t, b, `(() => { const m = document.getElementById('map'); return m && m.dataset.ready && window.anycatch && window.anycatch.map ? window.anycatch.map.at : ''; })()`)
		if at != "" && at != notAt {
			return at
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("map not drawn (map.at %q, not %q, hash %q; page says %q)", eval[string](t, b, `String(window.anycatch && window.anycatch.map && window.anycatch.map.at)`), notAt, eval[string](t, b, `location.hash`), eval[string](t, b, `document.querySelector('main') ? document.querySelector('main').innerText : document.body.innerText`))
	return ""
}

func dotOf(m uiMap, probe string) (site, color string) {
	for _, d := range m.Dots {
		if d.Probe == probe {
			return d.Site, d.Color
		}
	}
	return "", ""
}

func TestBrowser(t *testing.T) {
	browsertest.Require(t)
	w := newWorld(t, 1500, 12)
	b := newBrowser(t)
	base := w.srv.URL

	// Map, now.
	b.Do(t, chromedp.Navigate(base+"/#/map?target="+w.target))
	nowAt := waitMap(t, b, "")
	m := checkMap(t, w, b, "")
	if s, c := dotOf(m, w.movedGB); s != "ams" || c != m.Colors["ams"] {
		t.Errorf("probe %s now: site %q colour %s, want ams %s", w.movedGB, s, c, m.Colors["ams"])
	}
	// Pin a probe that has a traceroute, for the screenshot.
	eval[bool](t, b, `(() => {
		const d = window.anycatch.map.dots.find(d => d.probe === 'p-00003');
		const svg = document.querySelector('#map svg'); const r = svg.getBoundingClientRect();
		const x = r.left + d.x * r.width / svg.viewBox.baseVal.width, y = r.top + d.y * r.height / svg.viewBox.baseVal.height;
		for (const type of ['mousemove', 'click']) svg.dispatchEvent(new MouseEvent(type, {clientX: x, clientY: y, bubbles: true}));
		return true;
	})()`)
	b.Do(t, chromedp.WaitVisible(chromedp.CSS(`#trace ol.hops`)))
	screenshot(t, b, "map")

	// The time control: one step back shows the catchment before the
	// change, when GB and IE probes reached iad.
	b.Do(t, chromedp.WaitEnabled(chromedp.CSS(`#prev-change`)), chromedp.Click(chromedp.CSS(`#prev-change`)))
	pastAt := waitMap(t, b, nowAt)
	hash := eval[string](t, b, `location.hash`)
	u, _ := url.Parse("http://x/?" + strings.SplitN(hash, "?", 2)[1])
	at := u.Query().Get("at")
	if at == "" {
		t.Fatalf("no at= in %s after stepping back", hash)
	}
	// The steps come from changes/times in 1-minute buckets: just before
	// the minute the change fell in.
	if tm, _ := time.Parse(time.RFC3339Nano, at); !tm.Before(w.change) || tm.Before(w.change.Truncate(time.Minute).Add(-time.Second)) {
		t.Errorf("stepped back to %s, want just before the minute of the change at %s", at, w.change.Format(time.RFC3339Nano))
	}
	past := checkMap(t, w, b, at)
	if s, c := dotOf(past, w.movedGB); s != "iad" || c != m.Colors["iad"] {
		t.Errorf("probe %s at %s: site %q colour %s, want iad %s", w.movedGB, pastAt, s, c, m.Colors["iad"])
	}
	screenshot(t, b, "map-earlier")
	b.Do(t, chromedp.Click(chromedp.CSS(`#now`)))
	waitMap(t, b, pastAt)

	// Changes.
	b.Do(t, chromedp.Navigate(base+"/#/changes?target="+w.target), chromedp.WaitVisible(chromedp.CSS(`#site-changes`)))
	gained := eval[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll('#site-changes li')].map(li => [li.dataset.site, li.dataset.gained + '/' + li.dataset.lost]))`)
	if gained["ams"] == "" || gained["iad"] == "" || strings.HasPrefix(gained["ams"], "0/") || strings.HasSuffix(gained["iad"], "/0") {
		t.Errorf("changes per site %v: want ams to gain and iad to lose", gained)
	}
	// Newest first, first observations hidden until the box is ticked.
	rows := eval[[][]string](t, b, `[...document.querySelectorAll('#changes-list tbody tr')].map(tr => [tr.children[0].textContent, tr.children[3].textContent])`)
	if len(rows) == 0 {
		t.Fatal("changes list is empty")
	}
	for i, r := range rows {
		if strings.HasPrefix(r[1], "new") {
			t.Errorf("changes row %d %v: a first observation, want moves only", i, r)
			break
		}
		if i > 0 && r[0] > rows[i-1][0] {
			t.Errorf("changes rows %d, %d: %s after %s, want newest first", i-1, i, r[0], rows[i-1][0])
			break
		}
	}
	if href := eval[string](t, b, `document.getElementById('changes-csv').getAttribute('href')`); !strings.Contains(href, "order=desc") || !strings.Contains(href, "moves_only=true") {
		t.Errorf("changes CSV link %s lacks order=desc&moves_only=true", href)
	}
	screenshot(t, b, "changes")

	// Latency: sorting and the CSV link.
	b.Do(t, chromedp.Navigate(base+"/#/latency?target="+w.target), chromedp.WaitVisible(chromedp.CSS(`#latency-table`)))
	// The table is group × site: a site column's cells carry data-p50;
	// empty cells (no probe of the group reached the site) sort last.
	col := func(key string) []float64 {
		cells := eval[[]string](t, b, fmt.Sprintf(`(() => { const t = document.getElementById('latency-table');
			const i = [...t.querySelectorAll('th')].findIndex(th => th.dataset.key === %q);
			return [...t.querySelectorAll('tbody tr')].map(tr => { const c = tr.children[i], v = c.querySelector('[data-p50]');
				return v ? v.dataset.p50 : c.textContent; }); })()`, key))
		var out []float64
		for _, c := range cells {
			if f, err := strconv.ParseFloat(strings.TrimSpace(c), 64); err == nil {
				out = append(out, f)
			}
		}
		return out
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`#latency-table th[data-key="p50"]`)))
	desc := col("p50")
	b.Do(t, chromedp.Click(chromedp.CSS(`#latency-table th[data-key="p50"]`)))
	asc := col("p50")
	if len(desc) < 5 || !sort.SliceIsSorted(desc, func(i, j int) bool { return desc[i] > desc[j] }) {
		t.Errorf("first click on p50: %v, want descending", desc)
	}
	if len(asc) != len(desc) || !sort.Float64sAreSorted(asc) {
		t.Errorf("second click on p50: %v, want ascending", asc)
	}
	siteKeys := eval[[]string](t, b, `[...document.querySelectorAll('#latency-table th')].map(th => th.dataset.key).filter(k => k.startsWith('site:'))`)
	if len(siteKeys) < 2 {
		t.Fatalf("latency table site columns %v, want one per site", siteKeys)
	}
	for _, key := range siteKeys[:2] {
		sel := fmt.Sprintf(`#latency-table th[data-key=%q]`, key)
		b.Do(t, chromedp.Click(chromedp.CSS(sel)))
		desc := col(key)
		b.Do(t, chromedp.Click(chromedp.CSS(sel)))
		asc := col(key)
		if len(desc) < 2 || !sort.SliceIsSorted(desc, func(i, j int) bool { return desc[i] > desc[j] }) {
			t.Errorf("first click on %s: %v, want descending p50", key, desc)
		}
		if len(asc) != len(desc) || !sort.Float64sAreSorted(asc) {
			t.Errorf("second click on %s: %v, want ascending p50", key, asc)
		}
	}
	// The cells are the API's by_group_site p50s.
	var lat struct {
		ByGroupSite []struct {
			Group, Site string
			P50         *float64
			Inflated    bool
		} `json:"by_group_site"`
	}
	latQ := eval[string](t, b, `document.getElementById('csv').getAttribute('href').replace(/&?format=csv/, '')`)
	getJSON(t, base+latQ, &lat)
	cells := eval[map[string]string](t, b, `(() => { const t = document.getElementById('latency-table');
		const keys = [...t.querySelectorAll('th')].map(th => th.dataset.key); const out = {};
		for (const tr of t.querySelectorAll('tbody tr')) { const g = tr.querySelector('.gkey').dataset.group;
			keys.forEach((k, i) => { const v = tr.children[i].querySelector('[data-p50]'); if (v) out[g + '|' + k.slice(5)] = v.dataset.p50 + (v.dataset.inflated ? '!' : ''); }); }
		return out; })()`)
	nAPI, inflated := 0, 0
	for _, c := range lat.ByGroupSite {
		ui, ok := cells[c.Group+"|"+c.Site]
		if c.P50 == nil || !ok {
			continue
		}
		nAPI++
		want := strconv.FormatFloat(*c.P50, 'f', -1, 64)
		if c.Inflated {
			want += "!"
			inflated++
		}
		if ui != want {
			t.Errorf("latency cell %s × %s: %s, API %s", c.Group, c.Site, ui, want)
		}
	}
	if nAPI == 0 || nAPI != len(cells) {
		t.Errorf("latency table has %d cells, %d match the API's by_group_site", len(cells), nAPI)
	}
	t.Logf("latency matrix: %d cells, %d inflated", len(cells), inflated)
	href := eval[string](t, b, `document.getElementById('csv').getAttribute('href')`)
	res, err := http.Get(base + href)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(res.Body).ReadAll()
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") || len(recs) < 2 {
		t.Errorf("CSV link %s: status %d type %q, %d records, err %v", href, res.StatusCode, res.Header.Get("Content-Type"), len(recs), err)
	} else {
		t.Logf("CSV %s: header %v, %d rows", href, recs[0], len(recs)-1)
	}
	screenshot(t, b, "latency")

	// Probes, then a country filter.
	b.Do(t, chromedp.Navigate(base+"/#/probes"), chromedp.WaitVisible(chromedp.CSS(`#probe-filters`)), chromedp.WaitVisible(chromedp.CSS(`tbody tr`)))
	screenshot(t, b, "probes")
	b.Do(t, chromedp.SendKeys(chromedp.CSS(`#probe-filters input[name=country]`), "de"),
		chromedp.Click(chromedp.CSS(`#probe-filters button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#probe-filters button[type=button]`)))
	locs := eval[[]string](t, b, `[...document.querySelectorAll('tbody tr')].map(tr => tr.children[2].textContent)`)
	if len(locs) == 0 {
		t.Error("country filter DE: no rows")
	}
	for _, l := range locs {
		if !strings.HasSuffix(l, ", DE") {
			t.Errorf("country filter DE: row located %q", l)
			break
		}
	}

	// Sites & rules, with the unmapped identities highlighted.
	b.Do(t, chromedp.Navigate(base+"/#/sites?target="+w.target), chromedp.WaitVisible(chromedp.CSS(`#sites`)), chromedp.WaitVisible(chromedp.CSS(`#unmapped`)))
	unmapped := eval[string](t, b, `document.getElementById('unmapped').innerText`)
	if !strings.Contains(unmapped, "-new.k-root") {
		t.Errorf("unmapped table %q lacks the seeded unmapped identities", unmapped)
	}
	// Identification beyond CHAOS: every site card has its speed-of-light
	// line, and the check's card is there.
	b.Do(t, chromedp.WaitVisible(chromedp.CSS(`#sol`)))
	if n := eval[int](t, b, `document.querySelectorAll('[data-sol-site]').length`); n != eval[int](t, b, `document.querySelectorAll('.site-card').length`) || n == 0 {
		t.Errorf("got %d speed-of-light lines for the site cards", n)
	}
	t.Logf("speed-of-light card: %q", eval[string](t, b, `document.querySelector('#sol .card-head').innerText`))
	screenshot(t, b, "sites")

	b.AssertLocalOnly(t, base)
}
