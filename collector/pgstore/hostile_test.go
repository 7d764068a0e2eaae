package pgstore_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/httprate"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
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

// TestEnrollmentHardened is the regression test for finding 4: token
// guessing is rate-limited per source address (and per IPv6 /64) before
// any database lookup — a burst sees 429s with Retry-After — and unknown,
// used-up, expired and revoked tokens all get the same 401 body. Before,
// 300 wrong tokens went through in 2.2 s, each answered with its reason.
func TestEnrollmentHardened(t *testing.T) {
	r := newRig(t, pgtest.NewURL(t), func(c *collector.Config) {
		c.EnrollLimiter = httprate.NewRateLimiter(20, time.Minute)
	})
	ctx := context.Background()
	single := r.token(t, collector.TokenOptions{MaxUses: 1})
	tokens := collector.Tokens{Store: pgstore.New(r.db), Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	_, expired, _ := tokens.Create(ctx, collector.TokenOptions{TTL: time.Minute})
	tokens.Now = nil
	rt, revoked, _ := tokens.Create(ctx, collector.TokenOptions{})
	if err := tokens.Revoke(ctx, rt.ID); err != nil {
		t.Fatal(err)
	}
	if _, code, b := r.enroll(t, single); code != http.StatusCreated {
		t.Fatalf("first use: %d %s", code, b)
	}
	var bodies []string
	for _, tok := range []string{single, expired, revoked, "act_" + strings.Repeat("x", 43)} {
		_, code, b := r.enroll(t, tok)
		if code != http.StatusUnauthorized {
			t.Errorf("token %.8s…: %d %s, want 401", tok, code, b)
		}
		bodies = append(bodies, b)
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("401 bodies differ, telling why a token failed:\n%s\n%s", bodies[0], b)
		}
	}
	// Guessing: 100 wrong tokens in a burst; past the limit (20/min, 5
	// used above) every attempt is a 429 and costs no token lookup.
	var n401, n429 int
	retryAfter := ""
	for i := range 100 {
		_, key, _ := ed25519.GenerateKey(nil)
		body, _ := json.Marshal(measure.EnrollRequest{Token: fmt.Sprintf("act_guess%039d", i), PublicKey: key.Public().(ed25519.PublicKey)})
		resp, err := http.Post(r.srv.URL+measure.PathEnroll, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			n401++
		case http.StatusTooManyRequests:
			n429++
			retryAfter = resp.Header.Get("Retry-After")
		default:
			t.Fatalf("guess %d: status %d", i, resp.StatusCode)
		}
	}
	if n401 != 15 || n429 != 85 || retryAfter == "" {
		t.Errorf("burst of 100 guesses: %d×401, %d×429 (Retry-After %q), want 15×401 then 85×429 with Retry-After", n401, n429, retryAfter)
	}
}
