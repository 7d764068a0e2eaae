// Package browsertest drives Debian's headless Chromium for UI tests: a
// fresh profile per test, the flags that keep it off the network, a record
// of every request the page makes (to assert nothing leaves the test
// server), and full-page screenshots saved under artifacts/screenshots.
package browsertest

import (
	"context"
	"github.com/anycatch/anycatch/internal/fixtures"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

const chromium = "/usr/bin/chromium"

// Require skips t when Debian's chromium is not installed.
func Require(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("browser tests need %s (apt-get install chromium): %v", chromium, err)
	}
}

// Browser is headless Chromium with a fresh profile and records every
// request URL it makes. It skips the test when Chromium is not installed.
type Browser struct {
	ctx  context.Context
	mu   sync.Mutex
	urls []string
}

func New(t *testing.T) *Browser {
	t.Helper()
	Require(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	b := &Browser{ctx: ctx}
	// Listen starts the browser; the page's network domain is enabled by
	// chromedp, so every request the page makes is reported here.
	err := chromedp.Listen(ctx, func(ev any) {
		var u string
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			u = e.Request.URL
		case network.EventRequestWillBeSent:
			u = e.Request.URL
		default:
			return
		}
		b.mu.Lock()
		b.urls = append(b.urls, u)
		b.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.Do(t, chromedp.EmulateViewport(1440, 900))
	return b
}

func (b *Browser) Do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](t *testing.T, b *Browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", expr, err)
	}
	return v
}

// AssertLocalOnly fails unless every request went to the test server.
func (b *Browser) AssertLocalOnly(t *testing.T, server string) {
	t.Helper()
	su, _ := url.Parse(server)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.urls) == 0 {
		t.Fatal("no request recorded")
	}
	for _, raw := range b.urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("unparsable request URL %q", raw)
			continue
		}
		if u.Scheme == "data" {
			continue // inline favicon
		}
		if u.Host != su.Host {
			t.Errorf("request to %s: want only %s", raw, su.Host)
		}
	}
	t.Logf("%d requests, all to %s", len(b.urls), su.Host)
}

// Screenshot saves a full-page PNG as artifacts/screenshots/NAME.png at
// the module root.
func (b *Browser) Screenshot(t *testing.T, name string) {
	t.Helper()
	dir := filepath.Join(fixtures.ModuleRoot(t), "artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}
