// Package uploadtest provides a fake collector implementing the probe
// protocol of [measure] (enrollment, signed requests verified with
// [measure.Verify], schedule ETags, heartbeats, NDJSON result uploads with
// per-line verdicts) on a loopback httptest server, with switches for
// outages, rate limiting and partial answers.
package uploadtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// Collector is a fake collector. Its exported fields may be changed only
// before the first request; use the methods afterwards.
type Collector struct {
	URL   string
	Token string // the one-time enrollment token it accepts

	srv *httptest.Server

	mu         sync.Mutex
	probes     map[string]ed25519.PublicKey
	schedule   measure.Schedule
	etag       string
	down       bool
	failures   []failure
	delivered  map[measure.UUID]int // committed results, by id: must end up 1 each
	wire       map[measure.UUID]int // times each id arrived on the wire
	results    []measure.Result
	heartbeats []measure.Heartbeat
	log        []Request
	omitLine   func(line int) bool
	reject     func(r *measure.Result) string
}

// Request is one request the collector saw.
type Request struct {
	Time   time.Time
	Op     string // "enroll", "schedule", "heartbeat", "results"
	Status int
	Lines  int // result lines, for uploads
}

type failure struct {
	op         string
	status     int
	retryAfter string
	n          int
}

// New starts a fake collector on 127.0.0.1, closed when t ends.
func New(t testing.TB) *Collector {
	c := newCollector()
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	c.URL = c.srv.URL
	t.Cleanup(c.srv.Close)
	return c
}

// NewInMemory returns a fake collector without a listener: it answers
// only the requests of [Collector.Client], in the caller's goroutine. A
// test in a testing/synctest bubble needs this: a goroutine blocked on a
// socket (a server's accept loop, a client's idle connection) is not
// durably blocked, so the bubble's fake clock would never advance.
func NewInMemory(t testing.TB) *Collector {
	c := newCollector()
	c.URL = "http://collector.invalid" // never dialled
	return c
}

func newCollector() *Collector {
	return &Collector{
		Token:     "enroll-me",
		probes:    map[string]ed25519.PublicKey{},
		delivered: map[measure.UUID]int{},
		wire:      map[measure.UUID]int{},
	}
}

// Client returns an HTTP client whose requests c serves in memory,
// whatever their URL: no connection is made. A collector that is down
// (see SetDown) fails requests with an error, as a dropped connection
// does.
func (c *Collector) Client() *http.Client {
	return &http.Client{Transport: memTransport{c}}
}

// memTransport serves requests with a Collector's handler directly.
type memTransport struct{ c *Collector }

func (m memTransport) RoundTrip(r *http.Request) (res *http.Response, err error) {
	if r.Body != nil {
		defer r.Body.Close() // as a RoundTripper must
	}
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	in := r.Clone(r.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = r.URL.RequestURI()
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			res, err = nil, errors.New("uploadtest: connection closed by the collector")
		}
	}()
	rec := httptest.NewRecorder()
	m.c.serve(rec, in)
	res = rec.Result()
	res.Request = r
	return res, nil
}

// SetSchedule sets the schedule served to every probe; its Version is the
// ETag.
func (c *Collector) SetSchedule(s measure.Schedule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.schedule = s
	c.etag = strconv.Quote(s.Version)
}

// SetDown makes every request fail (connection closed without an answer)
// until SetDown(false).
func (c *Collector) SetDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// FailNext makes the next n requests for op ("results", "schedule", …)
// answer status with the given Retry-After header ("" for none).
func (c *Collector) FailNext(op string, status int, retryAfter string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, failure{op, status, retryAfter, n})
}

// OmitVerdicts makes uploads answer without a verdict for lines where f is
// true; such lines are not committed.
func (c *Collector) OmitVerdicts(f func(line int) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.omitLine = f
}

// Reject makes uploads reject results for which f returns a reason.
func (c *Collector) Reject(f func(r *measure.Result) string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reject = f
}

// Delivered returns how many times each result id was committed.
func (c *Collector) Delivered() map[measure.UUID]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[measure.UUID]int, len(c.delivered))
	for k, v := range c.delivered {
		out[k] = v
	}
	return out
}

// Results returns the committed results in arrival order.
func (c *Collector) Results() []measure.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]measure.Result(nil), c.results...)
}

// WireCount returns how many times id arrived, duplicates included.
func (c *Collector) WireCount(id measure.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wire[id]
}

// Heartbeats returns the heartbeats received.
func (c *Collector) Heartbeats() []measure.Heartbeat {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]measure.Heartbeat(nil), c.heartbeats...)
}

// Requests returns every request seen, in order.
func (c *Collector) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.log...)
}

// Probes returns the number of enrolled probes.
func (c *Collector) Probes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.probes)
}

var ops = map[string]string{
	measure.PathEnroll: "enroll", measure.PathSchedule: "schedule",
	measure.PathHeartbeat: "heartbeat", measure.PathResults: "results",
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := ops[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	entry := Request{Time: time.Now(), Op: op}
	defer func() { c.log = append(c.log, entry) }()
	fail := func(status int, msg string) {
		entry.Status = status
		http.Error(w, msg, status)
	}
	if c.down {
		entry.Status = -1
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	for i := range c.failures {
		if f := &c.failures[i]; f.op == op && f.n > 0 {
			f.n--
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			fail(f.status, "injected failure")
			return
		}
	}
	if op == "enroll" {
		var req measure.EnrollRequest
		if r.Method != http.MethodPost || json.Unmarshal(body, &req) != nil || len(req.PublicKey) != ed25519.PublicKeySize {
			fail(http.StatusBadRequest, "bad enroll request")
			return
		}
		if req.Token == "" || req.Token != c.Token {
			fail(http.StatusUnauthorized, "bad token")
			return
		}
		c.Token = "" // one-time
		id := fmt.Sprintf("p%d", len(c.probes)+1)
		c.probes[id] = ed25519.PublicKey(req.PublicKey)
		entry.Status = http.StatusOK
		writeJSON(w, measure.EnrollResponse{Probe: id})
		return
	}
	pub := c.probes[r.Header.Get(measure.HeaderProbe)]
	if err := measure.Verify(pub, r.Method, r.URL.Path, r.Header.Get(measure.HeaderTimestamp), r.Header.Get(measure.HeaderSignature), body, time.Now()); err != nil {
		fail(http.StatusUnauthorized, err.Error())
		return
	}
	switch op {
	case "schedule":
		if r.Method != http.MethodGet {
			fail(http.StatusMethodNotAllowed, "GET only")
			return
		}
		if inm := r.Header.Get("If-None-Match"); inm != "" && inm == c.etag {
			entry.Status = http.StatusNotModified
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", c.etag)
		entry.Status = http.StatusOK
		writeJSON(w, c.schedule)
	case "heartbeat":
		var hb measure.Heartbeat
		if json.Unmarshal(body, &hb) != nil {
			fail(http.StatusBadRequest, "bad heartbeat")
			return
		}
		c.heartbeats = append(c.heartbeats, hb)
		entry.Status = http.StatusNoContent
		w.WriteHeader(http.StatusNoContent)
	case "results":
		var rd io.Reader = bytes.NewReader(body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(rd)
			if err != nil {
				fail(http.StatusBadRequest, "bad gzip")
				return
			}
			rd = io.LimitReader(zr, 64<<20)
		}
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		var resp measure.UploadResponse
		line := 0
		for sc.Scan() {
			line++
			var res measure.Result
			v := measure.LineVerdict{Line: line}
			if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
				v.Verdict, v.Reason = measure.Rejected, "not a result: "+err.Error()
			} else if err := res.Validate(time.Now()); err != nil {
				v.ID, v.Verdict, v.Reason = res.ID.String(), measure.Rejected, err.Error()
			} else if reason := c.rejectReason(&res); reason != "" {
				v.ID, v.Verdict, v.Reason = res.ID.String(), measure.Rejected, reason
			} else {
				v.ID = res.ID.String()
				if c.omitLine != nil && c.omitLine(line) {
					c.wire[res.ID]++
					continue
				}
				c.wire[res.ID]++
				if c.delivered[res.ID] > 0 {
					v.Verdict = measure.Duplicate
				} else {
					v.Verdict = measure.Accepted
					c.delivered[res.ID]++
					c.results = append(c.results, res)
				}
			}
			switch v.Verdict {
			case measure.Accepted:
				resp.Accepted++
			case measure.Duplicate:
				resp.Duplicate++
			case measure.Rejected:
				resp.Rejected++
			}
			resp.Lines = append(resp.Lines, v)
		}
		if err := sc.Err(); err != nil {
			fail(http.StatusBadRequest, "read results: "+err.Error())
			return
		}
		entry.Status, entry.Lines = http.StatusOK, line
		writeJSON(w, resp)
	}
}

func (c *Collector) rejectReason(r *measure.Result) string {
	if c.reject == nil {
		return ""
	}
	return c.reject(r)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
