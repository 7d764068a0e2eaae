package collector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// ingestReq is one upload's rows on their way to the store.
type ingestReq struct {
	rows []Row
	done chan ingestResp // buffered(1): the pipeline never blocks on it
}

type ingestResp struct {
	inserted []bool
	refused  []string // per row: why the store refused its content ("" if it did not); final
	err      error
}

// errStopped answers requests still queued when the collector stops.
var errStopped = errors.New("collector stopping")

func (c *Collector) overloaded() bool {
	return c.queuedRows.Load() >= int64(c.cfg.MaxQueuedRows)
}

func (c *Collector) handleResults(w http.ResponseWriter, r *http.Request) {
	if c.overloaded() {
		c.metrics.uploads.WithLabelValues("overloaded").Inc()
		writeRetry(w, c.cfg.RetryAfter, measure.CodeOverloaded, "collector overloaded; retry later")
		return
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		writeErrorStatus(w, http.StatusUnsupportedMediaType, "invalid", "content-encoding "+shorten(enc)+" not supported (use gzip or none)")
		return
	}
	now := c.cfg.Now()
	lines, err := DecodeUpload(bodyFrom(r.Context()), gz, UploadLimits{
		MaxDecompressed: c.cfg.MaxDecompressed, MaxLine: c.cfg.MaxLine, MaxLines: c.cfg.MaxLines,
	}, now)
	switch {
	case errors.Is(err, ErrUploadTooLarge):
		c.metrics.uploads.WithLabelValues("invalid").Inc()
		writeError(w, measure.CodeTooLarge, err.Error()+"; split the upload")
		return
	case err != nil:
		c.metrics.uploads.WithLabelValues("invalid").Inc()
		writeError(w, measure.CodeInvalid, err.Error())
		return
	}
	p, err := c.currentPlan(r.Context())
	if err != nil {
		c.log.Error("results: load targets", "err", err)
		c.metrics.uploads.WithLabelValues("unavailable").Inc()
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "targets unavailable; retry later")
		return
	}
	probe := probeFrom(r.Context())
	resp := measure.UploadResponse{Lines: make([]measure.LineVerdict, len(lines))}
	rows := make([]Row, 0, len(lines))
	rowLine := make([]int, 0, len(lines)) // index into lines of each row
	dupOf := map[int]int{}                // line index -> row index of an earlier line with the same id
	seen := make(map[measure.UUID]int, len(lines))
	for i := range lines {
		l := &lines[i]
		resp.Lines[i] = measure.LineVerdict{Line: l.N, ID: l.ID}
		if l.Result != nil {
			if reason, class := c.authorize(p, probe, l.Result, now); reason != "" {
				l.Result, l.Reason, l.Class = nil, reason, class
			}
		}
		if l.Result == nil {
			resp.Lines[i].Verdict, resp.Lines[i].Reason = measure.Rejected, l.Reason
			resp.Rejected++
			c.metrics.rejected.WithLabelValues(l.Class).Inc()
			continue
		}
		if j, ok := seen[l.Result.ID]; ok {
			dupOf[i] = j
			continue
		}
		seen[l.Result.ID] = len(rows)
		rows = append(rows, c.row(p, l.Result))
		rowLine = append(rowLine, i)
	}
	c.metrics.lines.WithLabelValues("rejected").Add(float64(resp.Rejected))
	if len(rows) > 0 {
		inserted, refused, err := c.submit(r.Context(), rows)
		if err != nil {
			c.failUpload(w, err)
			return
		}
		for k, ins := range inserted {
			lv := &resp.Lines[rowLine[k]]
			if refused != nil && refused[k] != "" {
				// Final: the same line would fail again, so the probe
				// must drop it rather than retry it forever.
				lv.Verdict, lv.Reason = measure.Rejected, refused[k]
				resp.Rejected++
				c.metrics.rejected.WithLabelValues("refused").Inc()
				c.metrics.lines.WithLabelValues("rejected").Inc()
				c.log.Warn("store refused a result", "probe", probe, "id", rows[k].Result.ID, "reason", refused[k])
				continue
			}
			if ins {
				lv.Verdict = measure.Accepted
				resp.Accepted++
				if rows[k].TargetID != AdhocTargetID {
					c.observePlace(probe, rows[k])
				}
				c.observeOnDemand(probe, rows[k])
			} else {
				lv.Verdict, lv.Reason = measure.Duplicate, "already stored"
				resp.Duplicate++
			}
		}
	}
	for i, j := range dupOf {
		if first := resp.Lines[rowLine[j]]; first.Verdict == measure.Rejected {
			resp.Lines[i].Verdict, resp.Lines[i].Reason = measure.Rejected, first.Reason
			resp.Rejected++
			continue
		}
		resp.Lines[i].Verdict, resp.Lines[i].Reason = measure.Duplicate, "repeated in this upload"
		resp.Duplicate++
	}
	c.metrics.lines.WithLabelValues("accepted").Add(float64(resp.Accepted))
	c.metrics.lines.WithLabelValues("duplicate").Add(float64(resp.Duplicate))
	c.metrics.uploads.WithLabelValues("ok").Inc()
	writeJSON(w, http.StatusOK, resp)
}

func (c *Collector) failUpload(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errOverloaded):
		c.metrics.uploads.WithLabelValues("overloaded").Inc()
		writeRetry(w, c.cfg.RetryAfter, measure.CodeOverloaded, "collector overloaded; nothing stored, retry later")
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
		c.metrics.uploads.WithLabelValues("canceled").Inc()
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "request canceled")
	default:
		c.metrics.uploads.WithLabelValues("unavailable").Inc()
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "result store unavailable; nothing stored, retry later")
	}
}

// authorize checks that r answers a measurement scheduled for probe and
// forces the fields the collector owns. It returns a rejection reason.
func (c *Collector) authorize(p *plan, probe string, r *measure.Result, now time.Time) (reason, class string) {
	if measure.IsAdhocID(r.Measurement) {
		if r.Time.Before(now.Add(-maxResultAge)) {
			return fmt.Sprintf("ts: older than %d days", int(maxResultAge.Hours()/24)), "invalid"
		}
		return c.authorizeAdhoc(probe, r, now)
	}
	m := p.byID[r.Measurement]
	if m == nil {
		return fmt.Sprintf("msm %q is not scheduled for this probe", shorten(r.Measurement)), "unscheduled"
	}
	if r.Kind != m.kind {
		return fmt.Sprintf("kind %q does not match measurement %s (%s)", r.Kind, r.Measurement, m.kind), "unscheduled"
	}
	dst, err := netip.ParseAddr(r.Dst)
	if err != nil || dst.Unmap() != m.addr {
		return fmt.Sprintf("dst %s is not the address of measurement %s", shorten(r.Dst), r.Measurement), "unscheduled"
	}
	if r.AF != m.af {
		return fmt.Sprintf("af %d does not match measurement %s", r.AF, r.Measurement), "unscheduled"
	}
	if r.Time.Before(now.Add(-maxResultAge)) {
		return fmt.Sprintf("ts: older than %d days", int(maxResultAge.Hours()/24)), "invalid"
	}
	r.Probe = probe
	r.Target = m.target.Name
	return "", ""
}

// maxResultAge bounds how late a spooled result is still taken.
const maxResultAge = 90 * 24 * time.Hour

// row derives the stored row of an authorised result.
func (c *Collector) row(p *plan, r *measure.Result) Row {
	row := Row{TargetID: AdhocTargetID, Result: r}
	// An ad-hoc result (authorised by authorizeAdhoc) belongs to no
	// target: stored under AdhocTargetID, never classified into catchment.
	adhoc := measure.IsAdhocID(r.Measurement)
	var t *plannedTarget
	if !adhoc {
		t = p.byID[r.Measurement].target
		row.TargetID = t.ID
	}
	if rtt, ok := r.RTT(); ok {
		row.RTT = &rtt
	}
	if r.Ping != nil && r.Ping.Sent > 0 {
		loss := 1 - float64(r.Ping.Received)/float64(r.Ping.Sent)
		row.Loss = &loss
	}
	switch r.Kind {
	case measure.KindIdentity, measure.KindDNS, measure.KindHTTP, measure.KindNTP, measure.KindTrace:
		if adhoc {
			break
		}
		if o, ok := ClassifyResult(t.identifier, r); ok {
			row.State, row.Site, row.Identity, row.Source = o.State, o.Site, o.Identity, o.Source
		}
	}
	return row
}

// ClassifyResult returns the catchment observation of an identity-bearing
// result (dns, identity, http, ntp, or a trace a trace_hop rule maps), and
// false for a result that says nothing about which site serves the probe.
func ClassifyResult(idf *catchment.Identifier, r *measure.Result) (catchment.Observation, bool) {
	if idf == nil {
		idf, _ = catchment.NewIdentifier(nil, nil)
	}
	if idf == nil {
		return catchment.Observation{}, false
	}
	o, err := catchment.ObservationFromResult(0, r, idf)
	return o, err == nil
}

// Classify returns the catchment outcome of a dns or identity result:
// unreachable when nothing answered, otherwise what idf makes of its
// identity (unidentified, with the raw identity, when no rule matches or
// idf is nil).
func Classify(idf *catchment.Identifier, r *measure.Result) (catchment.State, string, string) {
	if idf == nil {
		idf, _ = catchment.NewIdentifier(nil, nil)
	}
	if idf == nil {
		return catchment.StateUnidentified, "", ""
	}
	o, err := catchment.ObservationFromResult(0, r, idf)
	if err != nil {
		return catchment.StateUnreachable, "", ""
	}
	return o.State, o.Site, o.Identity
}

var errOverloaded = errors.New("ingest queue full")

// submit queues rows for the store and waits for the commit. It never
// acknowledges part of rows: either every row has a verdict (inserted, or
// refused for its content when refused[i] != "") or err is set.
func (c *Collector) submit(ctx context.Context, rows []Row) (inserted []bool, refused []string, err error) {
	n := int64(len(rows))
	if c.queuedRows.Add(n) > int64(c.cfg.MaxQueuedRows) && c.queuedRows.Load() != n {
		// Over the bound; a single request larger than the bound still
		// goes through when the queue is otherwise empty.
		c.queuedRows.Add(-n)
		return nil, nil, errOverloaded
	}
	c.metrics.queueDepth.Set(float64(c.queuedRows.Load()))
	req := &ingestReq{rows: rows, done: make(chan ingestResp, 1)}
	select {
	case c.queue <- req:
	default:
		c.queuedRows.Add(-n)
		return nil, nil, errOverloaded
	}
	select {
	case res := <-req.done:
		return res.inserted, res.refused, res.err
	case <-ctx.Done():
		// The pipeline still commits (or not); the probe will retry and
		// see duplicates. Nothing was acknowledged.
		return nil, nil, ctx.Err()
	}
}

// commitWorkers is how many store batches commit at once. Two keep both
// cores of a small machine busy: PostgreSQL writes one batch while the
// next is encoded and sent (or also written), instead of the collector and
// the database taking turns. Batches sharing catchment tracks serialize in
// the store on those tracks; a probe uploads one batch at a time, so its
// results still commit in order.
const commitWorkers = 2

// pipeline is the single consumer of the ingest queue: it coalesces queued
// requests into store batches and hands them to commitWorkers committers;
// while they are busy the queue fills, so batches grow under load.
func (c *Collector) pipeline(ctx context.Context) {
	batches := make(chan []*ingestReq)
	var workers sync.WaitGroup
	for range commitWorkers {
		workers.Add(1)
		go func() { // owned by pipeline: waited for below
			defer workers.Done()
			for b := range batches {
				n := 0
				for _, r := range b {
					n += len(r.rows)
				}
				c.commit(ctx, b, n)
			}
		}()
	}
	var carry *ingestReq
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer func() {
		// Let the batches already handed over commit (commit bounds each
		// by CommitTimeout), then fail whatever is still queued so no
		// handler waits forever.
		close(batches)
		workers.Wait()
		if carry != nil {
			c.failAll([]*ingestReq{carry}, errStopped)
		}
		for {
			select {
			case r := <-c.queue:
				c.failAll([]*ingestReq{r}, errStopped)
			default:
				return
			}
		}
	}()
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case <-ctx.Done():
				return
			case first = <-c.queue:
			}
		}
		batch := []*ingestReq{first}
		n := len(first.rows)
		timer.Reset(c.cfg.MaxBatchWait)
	fill:
		for n < c.cfg.MaxBatchRows {
			select {
			case r := <-c.queue:
				if n+len(r.rows) > c.cfg.MaxBatchRows {
					carry = r
					break fill
				}
				batch = append(batch, r)
				n += len(r.rows)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		// Committers never stop before batches is closed, so this send
		// completes: a batch taken from the queue is always committed.
		batches <- batch
	}
}

// commit stores one batch and answers its requests.
func (c *Collector) commit(ctx context.Context, batch []*ingestReq, n int) {
	rows := make([]Row, 0, n)
	// The same result may come in two concurrent uploads (a probe retrying
	// after a timeout): store it once, answer the copy as duplicate.
	index := make(map[measure.UUID]int, n)
	where := make([][]int, len(batch)) // per request, per row: index into rows, or -1-(index of first)
	for i, req := range batch {
		where[i] = make([]int, len(req.rows))
		for j := range req.rows {
			id := req.rows[j].Result.ID
			if k, ok := index[id]; ok {
				where[i][j] = -1 - k
				continue
			}
			index[id] = len(rows)
			where[i][j] = len(rows)
			rows = append(rows, req.rows[j])
		}
	}
	// Shutdown must not cut a commit in half: each store call is bounded
	// by its own timeout instead, and no batch is split once the
	// collector is stopping (the probes retry what did not commit).
	out := make([]rowOutcome, len(rows))
	budget := maxSplitCalls
	start := time.Now()
	c.storeRows(context.WithoutCancel(ctx), ctx.Done(), rows, out, &budget)
	c.metrics.commitSecs.Observe(time.Since(start).Seconds())
	c.metrics.batchRows.Observe(float64(len(rows)))
	if calls := maxSplitCalls - budget; calls > 1 {
		c.log.Warn("ingest batch split to isolate refused rows", "rows", len(rows), "requests", len(batch), "store_calls", calls)
	}
	c.finish(batch, func(i, j int) rowOutcome {
		k := where[i][j]
		if k < 0 {
			// The copy of a row stored (or found, or refused) under its
			// first occurrence.
			o := out[-1-k]
			o.inserted = false
			return o
		}
		return out[k]
	})
}

// rowOutcome is what became of one row of a store batch.
type rowOutcome struct {
	inserted bool
	refused  string // the store refused the row's content: final
	err      error  // a transient failure: the row's request is retried
}

// maxSplitCalls bounds the store calls one batch may take while it is
// split to isolate rows the store refuses. Bisection finds one such row
// among 5000 in about 26 calls; rows left when the budget is spent fail
// as transient (their probes retry, in other batches), so a flood of
// refused rows costs bounded work. Validate refuses every value known to
// fail, so splitting is the safety net, not the common path.
const maxSplitCalls = 128

// storeRows stores rows and fills out. When the store refuses the batch
// for its content, the batch is halved and each half stored on its own,
// recursively, so that only the offending rows fail and every other row
// (other probes' results in particular) commits.
func (c *Collector) storeRows(ctx context.Context, stopping <-chan struct{}, rows []Row, out []rowOutcome, budget *int) {
	*budget--
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
	inserted, err := c.store.IngestBatch(cctx, rows)
	cancel()
	if err == nil && len(inserted) != len(rows) {
		err = fmt.Errorf("store answered %d verdicts for %d rows", len(inserted), len(rows))
	}
	switch {
	case err == nil:
		for i := range rows {
			out[i] = rowOutcome{inserted: inserted[i]}
		}
	case errors.Is(err, ErrRowData) && len(rows) == 1:
		out[0] = rowOutcome{refused: "store refused the result: " + shorten(err.Error())}
	case errors.Is(err, ErrRowData) && *budget >= 2 && !closed(stopping):
		h := len(rows) / 2
		c.storeRows(ctx, stopping, rows[:h], out[:h], budget)
		c.storeRows(ctx, stopping, rows[h:], out[h:], budget)
	default:
		c.log.Error("ingest batch failed", "rows", len(rows), "err", err)
		for i := range out {
			out[i] = rowOutcome{err: err}
		}
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// finish answers every request of batch: with the outcome of each of its
// rows, or, when any of them failed transiently, with that error (the
// probe retries the whole upload; rows that did commit come back as
// duplicates).
func (c *Collector) finish(batch []*ingestReq, outcome func(i, j int) rowOutcome) {
	for i, req := range batch {
		res := ingestResp{inserted: make([]bool, len(req.rows))}
		for j := range req.rows {
			o := outcome(i, j)
			if o.err != nil {
				res = ingestResp{err: o.err}
				break
			}
			res.inserted[j] = o.inserted
			if o.refused != "" {
				if res.refused == nil {
					res.refused = make([]string, len(req.rows))
				}
				res.refused[j] = o.refused
			}
		}
		req.done <- res
		c.queuedRows.Add(-int64(len(req.rows)))
	}
	c.metrics.queueDepth.Set(float64(c.queuedRows.Load()))
}

// failAll answers every request of batch with err.
func (c *Collector) failAll(batch []*ingestReq, err error) {
	c.finish(batch, func(int, int) rowOutcome { return rowOutcome{err: err} })
}
