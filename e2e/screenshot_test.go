package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/anycatch/anycatch/internal/browsertest"
	"github.com/anycatch/anycatch/lab/labstack"
)

// screenshotMap opens the web UI on the lab's target in headless Chromium,
// checks it draws one dot per lab probe in the site the API reports, that
// every request stayed on the server, and saves a screenshot.
func screenshotMap(ctx context.Context, t *testing.T, s *labstack.Stack) {
	t.Helper()
	want, err := s.Catchment(ctx, 4)
	if err != nil {
		t.Fatalf("catchment: %v", err)
	}
	b := browsertest.New(t)
	b.Do(t, chromedp.Navigate(s.URL+"/#/map?target="+s.Target))
	type dot struct {
		Probe, Site, State string
	}
	var dots []dot
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		dots = browsertest.Eval[[]dot](t, b, `(() => {
			const m = document.getElementById('map');
			if (!m || !m.dataset.ready || !window.anycatch || !window.anycatch.map) return null;
			return window.anycatch.map.dots.map(d => ({Probe: d.probe, Site: d.site, State: d.state}));
		})()`)
		if len(dots) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	bySite := map[string]string{}
	for _, d := range dots {
		bySite[d.Probe] = d.Site
	}
	for client, o := range want {
		if got, ok := bySite[o.Probe]; !ok || got != o.Site {
			t.Errorf("map: %s (%s) drawn at site %q (present %v), API says %q", client, o.Probe, got, ok, o.Site)
		}
	}
	b.AssertLocalOnly(t, s.URL)
	b.Screenshot(t, "e2e-lab-map")
}
