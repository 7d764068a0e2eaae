package api

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockingReport is a report handler that counts renders and waits for
// release before answering status.
type blockingReport struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
	status  int
}

func (b *blockingReport) serve(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	b.started <- struct{}{}
	<-b.release
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(b.status)
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func newBlocking(status int) *blockingReport {
	return &blockingReport{started: make(chan struct{}, 16), release: make(chan struct{}), status: status}
}

func get(h http.HandlerFunc) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest("GET", "/api/v1/targets/x/catchment", nil))
	return rec
}

func TestReportCacheCoalescesMisses(t *testing.T) {
	s := &Server{cache: newRespCache(time.Minute, time.Now)}
	b := newBlocking(http.StatusOK)
	h := s.cached(b.serve)
	var wg sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, 6)
	wg.Go(func() { recs[0] = get(h) })
	<-b.started // the first request is rendering
	for i := 1; i < len(recs); i++ {
		wg.Go(func() { recs[i] = get(h) })
	}
	time.Sleep(50 * time.Millisecond) // let them queue behind it (late ones hit the entry anyway)
	close(b.release)
	wg.Wait()
	if n := b.calls.Load(); n != 1 {
		t.Errorf("%d renders for %d concurrent requests, want 1", n, len(recs))
	}
	for i, r := range recs {
		if r.Code != 200 || r.Body.String() != `{"ok":true}` || r.Header().Get("ETag") != recs[0].Header().Get("ETag") {
			t.Errorf("request %d: %d %q ETag %q", i, r.Code, r.Body, r.Header().Get("ETag"))
		}
	}
}

func TestReportCacheFailedRenderNotShared(t *testing.T) {
	s := &Server{cache: newRespCache(time.Minute, time.Now)}
	b := newBlocking(http.StatusServiceUnavailable)
	h := s.cached(b.serve)
	var wg sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, 3)
	wg.Go(func() { recs[0] = get(h) })
	<-b.started
	for i := 1; i < len(recs); i++ {
		wg.Go(func() { recs[i] = get(h) })
	}
	time.Sleep(20 * time.Millisecond)
	close(b.release)
	wg.Wait()
	if n := b.calls.Load(); n != int32(len(recs)) {
		t.Errorf("%d renders, want %d (errors are neither cached nor shared)", n, len(recs))
	}
	for i, r := range recs {
		if r.Code != http.StatusServiceUnavailable || r.Header().Get("ETag") != "" {
			t.Errorf("request %d: %d, ETag %q", i, r.Code, r.Header().Get("ETag"))
		}
	}
}

func TestReportCacheClearDuringRender(t *testing.T) {
	s := &Server{cache: newRespCache(time.Minute, time.Now)}
	b := newBlocking(http.StatusOK)
	h := s.cached(b.serve)
	done := make(chan struct{})
	go func() { get(h); close(done) }()
	<-b.started
	s.cache.clear() // a change through the API while the old report renders
	close(b.release)
	<-done
	go func() { <-b.started }()
	if r := get(h); r.Header().Get("X-Anycatch-Cache") != "miss" || b.calls.Load() != 2 {
		t.Errorf("after a clear during the render: cache %q, %d renders; want a new render", r.Header().Get("X-Anycatch-Cache"), b.calls.Load())
	}
}
