package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/internal/browsertest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/web"
)

// streamingLive is an api.Live whose probes answer one by one: identity
// results for all but the last, which times out.
type streamingLive struct {
	probes []string
	wg     sync.WaitGroup
	mu     sync.Mutex
	reqs   []api.LiveRequest
	byID   map[string]*liveMsm
}

type liveMsm struct {
	mu      sync.Mutex
	st      measure.OnDemandStatus
	changed chan struct{}
}

func (m *liveMsm) Status(from int) measure.OnDemandStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Events = slices.Clone(m.st.Events[min(from, len(m.st.Events)):])
	return st
}

func (m *liveMsm) Wait() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (l *streamingLive) ConnectedProbes() []string { return l.probes }

func (l *streamingLive) Measurement(id string) api.LiveMeasurement {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.byID[id]; m != nil {
		return m
	}
	return nil
}

func (l *streamingLive) StartMeasurement(req api.LiveRequest) (api.LiveMeasurement, error) {
	l.mu.Lock()
	l.reqs = append(l.reqs, req)
	id := fmt.Sprintf("od-%d", len(l.reqs))
	now := time.Now().UTC()
	m := &liveMsm{st: measure.OnDemandStatus{ID: id, Status: measure.OnDemandRunning, Target: req.Target, Probes: req.Probes,
		Measurements: []string{req.Target + "/identity/4"}, Created: now, Deadline: now.Add(req.Timeout)}, changed: make(chan struct{})}
	if l.byID == nil {
		l.byID = map[string]*liveMsm{}
	}
	l.byID[id] = m
	l.mu.Unlock()
	l.wg.Go(func() {
		for i, p := range req.Probes {
			time.Sleep(40 * time.Millisecond)
			ev := measure.OnDemandEvent{At: time.Now().UTC(), Probe: p, Measurement: req.Target + "/identity/4", Outcome: measure.OutcomeResult,
				Result: &measure.Result{V: 1, Kind: measure.KindIdentity, Measurement: req.Target + "/identity/4", Probe: p, Time: time.Now().UTC(), AF: 4,
					DNS: &measure.DNSResult{Identity: &measure.Identity{HostnameBind: "ns1.ams.k.example"}}}}
			if i == len(req.Probes)-1 {
				ev.Outcome, ev.Result, ev.Reason = measure.OutcomeTimeout, nil, "no result before the deadline"
			}
			m.mu.Lock()
			ev.Seq = len(m.st.Events) + 1
			m.st.Events = append(m.st.Events, ev)
			if i == len(req.Probes)-1 {
				m.st.Status = measure.OnDemandDone
			}
			close(m.changed)
			m.changed = make(chan struct{})
			m.mu.Unlock()
		}
	})
	return m, nil
}

// TestBrowserMeasureNow: the map's "Measure now" card starts an on-demand
// measurement with the stored API key, lists each probe's answer as it
// streams in and marks it on the map at the probe's dot.
func TestBrowserMeasureNow(t *testing.T) {
	browsertest.Require(t)
	w := newWorld(t, 300, 3)
	var c apiCatchment
	getJSON(t, w.srv.URL+"/api/v1/targets/"+w.target+"/catchment", &c)
	live := &streamingLive{}
	for _, p := range c.Probes {
		if p.Lat != nil {
			live.probes = append(live.probes, p.Probe)
		}
	}
	st := pgstore.New(w.db)
	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(api.Config{Store: st, AnonymousRead: true, AnonymousRatePerMin: 1 << 20, Live: live}))
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); live.wg.Wait() })
	_, key, err := api.CreateKey(context.Background(), st, "ui", api.ScopeRead, nil)
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	b.Do(t, chromedp.Navigate(srv.URL+"/#/map?target="+w.target))
	waitMap(t, b, "")
	eval[bool](t, b, fmt.Sprintf(`(localStorage.setItem('anycatch.apiKey', %q), true)`, key))
	b.Do(t, chromedp.Reload())
	at := waitMap(t, b, "")
	b.Do(t, chromedp.SetValue(chromedp.CSS(`#measure-limit`), "25"), chromedp.Click(chromedp.CSS(`#measure-now`)))
	b.Do(t, chromedp.WaitVisible(chromedp.CSS(`#measure-status[data-done="1"]`)))
	got := eval[struct {
		Events, OK, Bad int
		Status          string
	}](t, b, `({events: document.querySelectorAll('#measure-events li').length,
		ok: document.querySelectorAll('#map svg.overlay .landed.ok').length,
		bad: document.querySelectorAll('#map svg.overlay .landed.bad').length,
		status: document.querySelector('#measure-status').textContent})`)
	time.Sleep(1300 * time.Millisecond) // the marks' landing animation
	if n := eval[int](t, b, `document.querySelectorAll('#map svg.overlay .landed').length`); n != 25 {
		t.Errorf("%d marks on the map after the animation, want 25", n)
	}
	screenshot(t, b, "measure-now")
	if got.Events != 25 || got.OK != 24 || got.Bad != 1 {
		t.Errorf("after the stream: %d listed, %d ok and %d failed marks on the map; want 25, 24, 1 (%s)", got.Events, got.OK, got.Bad, got.Status)
	}
	live.mu.Lock()
	req := live.reqs[0]
	live.mu.Unlock()
	if len(req.Probes) != 25 || !slices.Equal(req.Kinds, []measure.Kind{measure.KindIdentity}) || req.Target != w.target {
		t.Errorf("request %+v: want 25 probes, identity, %s", req, w.target)
	}
	// The map is redrawn with the stored results once all answered.
	waitMap(t, b, at)
}
