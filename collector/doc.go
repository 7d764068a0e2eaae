// Package collector is the probe-facing side of the anycatch server:
// enrollment with one-time tokens, signed-request authentication, schedule
// hand-out, heartbeats with geolocation, and result ingest.
//
// Ingest validates every upload line on its own (decode, [measure.Result.Validate],
// authorisation against the probe's schedule), identifies the site of
// dns/identity answers, and feeds the rows through one bounded batching
// pipeline into the store: concurrent uploads are coalesced into store
// batches (up to Config.MaxBatchRows rows or Config.MaxBatchWait, whichever
// comes first). A line is acknowledged only after its batch committed; when
// the queue is full the collector answers 429, when the store fails 503,
// both with Retry-After and without acknowledging any line of the request.
// When the store refuses a batch for a value in it ([ErrRowData]) the batch
// is bisected so that only the offending lines are rejected, finally, and
// every other row commits: one probe's bad line never holds up others.
// docs/security.md lists every limit and where it is enforced.
//
// Live channel (live.go): each running probe holds one WebSocket at
// [measure.PathLive], authenticated by a signed upgrade and a challenge.
// Over it the collector pushes schedule changes (after every reload that
// changed the plan; call [Collector.Invalidate] on a target change, e.g.
// from the store's LISTEN/NOTIFY), measure-now nudges for on-demand
// measurements ([Collector.StartOnDemand], ondemand.go) and confirmation
// bursts (burst.go). Results of nudged runs come back through the normal
// upload; nothing is delivered over the channel but requests and
// refusals.
//
// The collector reaches the database only through the [Store] interface it
// declares; the server wiring adapts *store.DB to it.
package collector
