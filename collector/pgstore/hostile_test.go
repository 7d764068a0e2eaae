package pgstore_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
)

// poisonStore stands for a value Validate lets through but PostgreSQL
// refuses: it turns the identity "poison" into one with a NUL byte after
// the collector validated and classified the row.
type poisonStore struct{ collector.Store }

func (s poisonStore) IngestBatch(ctx context.Context, rows []collector.Row) ([]bool, error) {
	out := make([]collector.Row, len(rows))
	for i, r := range rows {
		if r.Identity == "poison" {
			r.Identity = "poi\x00son"
		}
		out[i] = r
	}
	return s.Store.IngestBatch(ctx, out)
}

// twoProbes runs the hostile probe's upload while an honest probe uploads
// n single results, concurrently, and returns the hostile probe's answer
// and the honest probe's failures.
func twoProbes(t *testing.T, r *rig, hostile []*measure.Result, n int) (int, measure.UploadResponse, []string) {
	bad, _, _ := r.enroll(t, r.token(t, collector.TokenOptions{}))
	good, _, _ := r.enroll(t, r.token(t, collector.TokenOptions{}))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		code     int
		ur       measure.UploadResponse
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		code, ur = bad.upload(hostile...)
	}()
	go func() {
		defer wg.Done()
		var inner sync.WaitGroup
		for w := range 4 { // 4 concurrent uploaders, so batches mix with the hostile upload
			inner.Add(1)
			go func() {
				defer inner.Done()
				for i := w; i < n; i += 4 {
					res := ident(1000+i, measure.Identity{HostnameBind: "ns1.ams.k.example"})
					res.Time = base.Add(time.Duration(i) * time.Second)
					res.ID = measure.NewUUIDv7(res.Time)
					if c, u := good.upload(res); c != http.StatusOK || u.Accepted != 1 {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("upload %d: %d %+v", i, c, u))
						mu.Unlock()
					}
				}
			}()
		}
		inner.Wait()
	}()
	wg.Wait()
	if got := count(t, r.db, `SELECT count(*) FROM results WHERE probe_id = $1`, good.id); got != n {
		t.Errorf("honest probe: %d results stored, want %d", got, n)
	}
	return code, ur, failures
}

// TestHostileNULLine is the regression test for finding 1: a probe
// uploading an identity with a NUL byte gets a final per-line rejection
// (which its agent drops from the spool), its other lines commit, and a
// second probe uploading at the same time has all 200 uploads committed.
// Before, the NUL line passed Validate, the COPY of the whole batch
// failed and every upload in it (both probes') got 503 "retry later".
func TestHostileNULLine(t *testing.T) {
	r := newRig(t, pgtest.NewURL(t), func(c *collector.Config) { c.MaxBatchWait = 20 * time.Millisecond })
	nul := ident(1, measure.Identity{HostnameBind: "abc\x00def"})
	nulErr := ident(2, measure.Identity{HostnameBind: "ns1.ams.k.example"})
	nulErr.Error = "boom\x00"
	ok := ident(3, measure.Identity{HostnameBind: "ns1.ams.k.example"})
	code, ur, failures := twoProbes(t, r, []*measure.Result{nul, nulErr, ok}, 200)
	for _, f := range failures {
		t.Error("honest probe:", f)
	}
	if code != http.StatusOK || ur.Accepted != 1 || ur.Rejected != 2 {
		t.Fatalf("hostile upload: %d %+v, want 200 with 1 accepted, 2 rejected", code, ur)
	}
	for _, l := range ur.Lines[:2] {
		if l.Verdict != measure.Rejected || !strings.Contains(l.Reason, "NUL") {
			t.Errorf("line %d: %s %q, want rejected naming the NUL", l.Line, l.Verdict, l.Reason)
		}
	}
}

// TestStoreRefusedRowIsolated covers the layer under Validate: when
// PostgreSQL refuses a value anyway, the batch is split so that only the
// offending line is rejected (finally, with the database's reason) and
// every other row, the other probe's included, commits.
func TestStoreRefusedRowIsolated(t *testing.T) {
	r := newRig(t, pgtest.NewURL(t), func(c *collector.Config) {
		c.MaxBatchWait = 20 * time.Millisecond
		c.Store = poisonStore{c.Store}
	})
	rs := []*measure.Result{
		ident(1, measure.Identity{HostnameBind: "ns1.ams.k.example"}),
		ident(2, measure.Identity{HostnameBind: "poison"}),
		ident(3, measure.Identity{HostnameBind: "ns2.ams.k.example"}),
	}
	code, ur, failures := twoProbes(t, r, rs, 200)
	for _, f := range failures {
		t.Error("honest probe:", f)
	}
	if code != http.StatusOK || ur.Accepted != 2 || ur.Rejected != 1 {
		t.Fatalf("hostile upload: %d %+v, want 200 with 2 accepted, 1 rejected", code, ur)
	}
	if l := ur.Lines[1]; l.Verdict != measure.Rejected || !strings.Contains(l.Reason, "store refused") || !strings.Contains(l.Reason, "0x00") {
		t.Errorf("poisoned line: %s %q, want rejected with the database's reason", l.Verdict, l.Reason)
	}
	if n := count(t, r.db, `SELECT count(*) FROM results WHERE id = ANY($1::uuid[])`, []string{rs[0].ID.String(), rs[2].ID.String()}); n != 2 {
		t.Errorf("%d of the hostile probe's good lines stored, want 2", n)
	}
	// Retrying the same upload is final for the poisoned line, not a loop.
	bad2, _, _ := r.enroll(t, r.token(t, collector.TokenOptions{}))
	if code, ur := bad2.upload(rs[1]); code != http.StatusOK || ur.Rejected != 1 {
		t.Errorf("poisoned line alone: %d %+v, want 200 rejected", code, ur)
	}
}
