package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// fakeLive is an api.Live whose measurements the test finishes by hand.
type fakeLive struct {
	mu        sync.Mutex
	connected []string
	reqs      []api.LiveRequest
	byID      map[string]*fakeMsm
}

type fakeMsm struct {
	mu      sync.Mutex
	st      measure.OnDemandStatus
	changed chan struct{}
}

func (f *fakeLive) ConnectedProbes() []string { return slices.Clone(f.connected) }

func (f *fakeLive) StartMeasurement(req api.LiveRequest) (api.LiveMeasurement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	id := fmt.Sprintf("od-%d", len(f.reqs))
	m := &fakeMsm{st: measure.OnDemandStatus{ID: id, Status: measure.OnDemandRunning, Target: req.Target, Probes: req.Probes,
		Measurements: []string{req.Target + "/identity/4"}}, changed: make(chan struct{})}
	if f.byID == nil {
		f.byID = map[string]*fakeMsm{}
	}
	f.byID[id] = m
	return m, nil
}

func (f *fakeLive) Measurement(id string) api.LiveMeasurement {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.byID[id]; m != nil {
		return m
	}
	return nil
}

func (f *fakeLive) last() api.LiveRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func (m *fakeMsm) Status(from int) measure.OnDemandStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Events = slices.Clone(m.st.Events[min(from, len(m.st.Events)):])
	return st
}

func (m *fakeMsm) Wait() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *fakeMsm) event(ev measure.OnDemandEvent, done bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev.Seq = len(m.st.Events) + 1
	m.st.Events = append(m.st.Events, ev)
	if done {
		m.st.Status = measure.OnDemandDone
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

func TestMeasurementSelection(t *testing.T) {
	live := &fakeLive{connected: []string{"p-1", "p-2", "p-3"}}
	e := newEnv(t, api.Config{Live: live, MeasurePerHour: 100, MeasureConcurrent: 100})
	e.seed()
	for _, c := range []struct {
		name, from string
		want       []string
	}{
		{"any", `{}`, []string{"p-1", "p-2", "p-3"}},
		{"country (p-4 is DE but not connected)", `{"country":"de"}`, []string{"p-1"}},
		{"continent", `{"continent":"EU"}`, []string{"p-1", "p-2"}},
		{"asn", `{"asn":7922}`, []string{"p-3"}},
		{"current site", `{"site":"ams"}`, []string{"p-2"}},
		{"explicit, connected or not", `{"probes":["p-4","p-1","p-4"]}`, []string{"p-1", "p-4"}},
	} {
		r := e.do("POST", "/api/v1/measurements", e.read, `{"target":"k-root","kinds":["identity"],"from":`+c.from+`}`)
		if r.status != http.StatusAccepted {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
			continue
		}
		var st measure.OnDemandStatus
		r.decode(t, &st)
		if got := live.last().Probes; !slices.Equal(got, c.want) || !slices.Equal(st.Probes, c.want) {
			t.Errorf("%s: selected %v (answer %v), want %v", c.name, got, st.Probes, c.want)
		}
		if loc := r.header.Get("Location"); loc != "/api/v1/measurements/"+st.ID {
			t.Errorf("%s: Location %q", c.name, loc)
		}
	}
	r := e.do("POST", "/api/v1/measurements", e.read, `{"target":"k-root","from":{"any":true},"limit":2}`)
	if r.status != http.StatusAccepted || len(live.last().Probes) != 2 {
		t.Errorf("limit 2: %d %s, selected %v", r.status, r.body, live.last().Probes)
	}
	for _, c := range []struct{ body, param string }{
		{`{"target":"k-root","from":{"country":"BR"}}`, "from"},
		{`{"target":"k-root","kinds":["smoke"]}`, "kinds"},
		{`{"target":"k-root","af":5}`, "af"},
		{`{"target":"k-root","limit":5000}`, "limit"},
		{`{"target":"k-root","timeout_sec":1}`, "timeout_sec"},
		{`{"from":{}}`, "target"},
	} {
		r := e.do("POST", "/api/v1/measurements", e.read, c.body)
		var ae apiError
		r.decode(t, &ae)
		if r.status != http.StatusBadRequest || ae.Error.Param != c.param {
			t.Errorf("%s: %d %s, want 400 on %s", c.body, r.status, r.body, c.param)
		}
	}
	if r := e.do("POST", "/api/v1/measurements", e.read, `{"target":"nope"}`); r.status != http.StatusNotFound {
		t.Errorf("unknown target: %d %s", r.status, r.body)
	}
}

func TestMeasurementAuth(t *testing.T) {
	live := &fakeLive{connected: []string{"p-1"}}
	e := newEnv(t, api.Config{Live: live, AnonymousRead: true})
	e.seed()
	if r := e.do("POST", "/api/v1/measurements", "", `{"target":"k-root"}`); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous: %d %s, want 401", r.status, r.body)
	}
	r := e.do("POST", "/api/v1/measurements", e.read, `{"address":"192.0.2.1","kinds":["ping"]}`)
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "admin") {
		t.Errorf("read key, arbitrary address: %d %s, want 403", r.status, r.body)
	}
	if len(live.reqs) != 0 {
		t.Errorf("refused requests reached the collector: %+v", live.reqs)
	}
	e2 := newEnv(t, api.Config{})
	if r := e2.do("POST", "/api/v1/measurements", e2.read, `{"target":"k-root"}`); r.status != http.StatusServiceUnavailable {
		t.Errorf("no collector: %d %s, want 503", r.status, r.body)
	}
}

func TestMeasurementQuota(t *testing.T) {
	live := &fakeLive{connected: []string{"p-1"}}
	e := newEnv(t, api.Config{Live: live, MeasureConcurrent: 1, MeasurePerHour: 2})
	e.seed()
	post := func(key string) resp { return e.do("POST", "/api/v1/measurements", key, `{"target":"k-root"}`) }
	if r := post(e.read); r.status != http.StatusAccepted {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	r := post(e.read)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("second while the first runs: %d %s (Retry-After %q), want 429 with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := post(e.admin); r.status != http.StatusAccepted {
		t.Errorf("another key is not limited by the first's quota: %d %s", r.status, r.body)
	}
	live.byID["od-1"].event(measure.OnDemandEvent{Probe: "p-1", Outcome: measure.OutcomeTimeout}, true)
	if r := post(e.read); r.status != http.StatusAccepted {
		t.Fatalf("after the first finished: %d %s", r.status, r.body)
	}
	live.byID["od-3"].event(measure.OnDemandEvent{Probe: "p-1", Outcome: measure.OutcomeTimeout}, true)
	if r := post(e.read); r.status != http.StatusTooManyRequests || !strings.Contains(string(r.body), "per hour") {
		t.Errorf("third in an hour: %d %s, want 429 per hour", r.status, r.body)
	}
}

func TestMeasurementStream(t *testing.T) {
	live := &fakeLive{connected: []string{"p-1", "p-2"}}
	e := newEnv(t, api.Config{Live: live})
	e.seed()
	r := e.do("POST", "/api/v1/measurements", e.read, `{"target":"k-root"}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	m := live.byID["od-1"]
	m.event(measure.OnDemandEvent{Probe: "p-1", Measurement: "k-root/identity/4", Outcome: measure.OutcomeResult}, false)

	for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/measurements/od-1", nil)
		req.Header.Set("Authorization", "Bearer "+e.read)
		req.Header.Set("Accept", accept)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := res.Header.Get("Content-Type"); ct != accept {
			t.Errorf("Content-Type %q, want %q", ct, accept)
		}
		sc := bufio.NewScanner(res.Body)
		lines := make(chan string, 100)
		go func() {
			defer close(lines)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		next := func() string {
			select {
			case l, ok := <-lines:
				if !ok {
					return "<eof>"
				}
				return l
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: no line within 5 s", accept)
				return ""
			}
		}
		if accept == "application/x-ndjson" {
			if l := next(); !strings.Contains(l, `"probe":"p-1"`) || !strings.Contains(l, `"seq":1`) {
				t.Errorf("ndjson first line %s", l)
			}
			// The stream stays open until the request is done…
			m.event(measure.OnDemandEvent{Probe: "p-2", Outcome: measure.OutcomeTimeout}, true)
			if l := next(); !strings.Contains(l, `"probe":"p-2"`) || !strings.Contains(l, `"outcome":"timeout"`) {
				t.Errorf("ndjson second line %s", l)
			}
		} else {
			var all []string
			for l := next(); l != "<eof>"; l = next() {
				all = append(all, l)
			}
			got := strings.Join(all, "\n")
			for _, want := range []string{"event: result\nid: 1\ndata: {", "event: timeout\nid: 2\n", "event: done\ndata: {\"id\":\"od-1\",\"status\":\"done\""} {
				if !strings.Contains(got, want) {
					t.Errorf("SSE stream lacks %q:\n%s", want, got)
				}
			}
		}
		// …and then ends.
		if l := next(); l != "<eof>" {
			t.Errorf("%s: stream did not end after done: %q", accept, l)
		}
		res.Body.Close()
	}
	r = e.do("GET", "/api/v1/measurements/od-1", e.read, "")
	var st measure.OnDemandStatus
	r.decode(t, &st)
	if st.Status != measure.OnDemandDone || len(st.Events) != 2 {
		t.Errorf("plain GET: %+v", st)
	}
	if r := e.do("GET", "/api/v1/measurements/od-9", e.read, ""); r.status != http.StatusNotFound {
		t.Errorf("unknown id: %d", r.status)
	}
}

func TestBursts(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	at := e.now.Add(-time.Minute)
	if err := e.db.RecordBurst(context.Background(), &store.Burst{At: at, TargetID: e.target.ID, Measurement: "k-root/identity/4",
		Trigger: "p-1", From: "site:ams", To: "site:fra", Nudged: []string{"p-2"}}); err != nil {
		t.Fatal(err)
	}
	var got struct{ Data []api.Burst }
	e.do("GET", "/api/v1/targets/k-root/bursts", e.read, "").decode(t, &got)
	if len(got.Data) != 1 || got.Data[0].To != "site:fra" || !got.Data[0].At.Equal(at) || !slices.Equal(got.Data[0].Nudged, []string{"p-2"}) {
		t.Errorf("bursts %+v", got.Data)
	}
	e.do("GET", "/api/v1/targets/k-root/bursts?from="+e.now.Format(time.RFC3339), e.read, "").decode(t, &got)
	if len(got.Data) != 0 {
		t.Errorf("bursts after now: %+v", got.Data)
	}
	if r := e.do("GET", "/api/v1/targets/nope/bursts", e.read, ""); r.status != http.StatusNotFound {
		t.Errorf("unknown target: %d", r.status)
	}
}
