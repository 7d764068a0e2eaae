package collector_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
)

// TestBatchSplitIsolatesRefusedRows: the store refuses (ErrRowData) any
// batch holding a row whose raw identity is "bad"; the collector bisects
// the batch so that exactly those lines are rejected, finally, every
// other line is accepted, and the number of store calls stays bounded.
func TestBatchSplitIsolatesRefusedRows(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, nil)
	inner := e.store
	e.store.ingest = func(ctx context.Context, rows []collector.Row) ([]bool, error) {
		calls.Add(1)
		for _, r := range rows {
			if r.Identity == "bad" {
				return nil, fmt.Errorf("copy: %w: invalid byte sequence 0x00", collector.ErrRowData)
			}
		}
		inner.mu.Lock()
		defer inner.mu.Unlock()
		out := make([]bool, len(rows))
		for i, r := range rows {
			if _, ok := inner.results[r.Result.ID]; !ok {
				inner.results[r.Result.ID] = r
				out[i] = true
			}
		}
		return out, nil
	}
	p := e.probe(t)
	var lines [][]byte
	bad := map[int]bool{17: true, 500: true}
	for i := range 1000 {
		host := "ns1.ams.k.example"
		if bad[i] {
			host = "bad"
		}
		lines = append(lines, line(t, identityResult("k-root/identity/4", "198.18.53.53", 4, measure.Identity{HostnameBind: host})))
	}
	resp, ur := p.upload(lines, false)
	if resp.StatusCode != http.StatusOK || ur.Accepted != 998 || ur.Rejected != 2 {
		t.Fatalf("upload: %d accepted %d rejected %d, want 200, 998, 2", resp.StatusCode, ur.Accepted, ur.Rejected)
	}
	for i, l := range ur.Lines {
		if bad[i] != (l.Verdict == measure.Rejected) {
			t.Errorf("line %d: %s %q", l.Line, l.Verdict, l.Reason)
		}
		if bad[i] && !strings.Contains(l.Reason, "store refused the result") {
			t.Errorf("line %d reason %q, want the store's refusal", l.Line, l.Reason)
		}
	}
	if got := e.store.count(); got != 998 {
		t.Errorf("stored %d, want 998", got)
	}
	// Two rows in 1000: about 2*2*log2(1000) calls; far below one per row.
	if n := calls.Load(); n > 60 {
		t.Errorf("%d store calls to isolate 2 rows in 1000, want ≤ 60", n)
	}
	t.Logf("%d store calls", calls.Load())

	// Transient errors stay transient: 503, nothing rejected.
	e.store.mu.Lock()
	e.store.ingest = func(context.Context, []collector.Row) ([]bool, error) { return nil, fmt.Errorf("connection reset") }
	e.store.mu.Unlock()
	resp, ur = p.upload(lines[:3], false)
	if resp.StatusCode != http.StatusServiceUnavailable || ur.Rejected != 0 {
		t.Errorf("transient store error: %d %+v, want 503", resp.StatusCode, ur)
	}
}
