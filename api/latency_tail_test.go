package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// TestLatencyIncludesUnrolledTail: results stored after the last rollup
// run are in the latency report at once (before, a fresh deployment showed
// an empty latency page until the 5-minute rollup), and counted once when
// the rollup has run.
func TestLatencyIncludesUnrolledTail(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	ctx := context.Background()
	type report struct {
		Total struct{ Probes, Count int }
		Sites []struct {
			Key    string
			Probes int
		}
	}
	get := func() report {
		t.Helper()
		var rep report
		r := e.do("GET", "/api/v1/targets/k-root/latency?kind=identity", e.read, "")
		if err := json.Unmarshal(r.body, &rep); err != nil || r.status != 200 {
			t.Fatalf("latency: %d %v %s", r.status, err, r.body)
		}
		return rep
	}
	before := get()

	// A new probe's first result, a minute ago: after the seed's rollup.
	if _, err := e.db.Pool().Exec(ctx, `INSERT INTO probes (id, asn, country, continent, version, last_seen) VALUES ('p-5', 3320, 'DE', 'EU', 'v1', $1)`, e.now); err != nil {
		t.Fatal(err)
	}
	ts := e.now.Add(-time.Minute)
	rtt := 7.5
	r := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: "p-5", Measurement: "k-root/identity", Target: "k-root",
		Kind: measure.KindIdentity, Time: ts, Dst: "198.18.53.53", AF: 4, DNS: &measure.DNSResult{Server: "198.18.53.53:53",
			Exchanges: []measure.DNSExchange{{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: rtt, Rcode: "NOERROR"}},
			Identity:  &measure.Identity{HostnameBind: "ams1.k"}}}
	if err := r.Validate(e.now); err != nil {
		t.Fatal(err)
	}
	row := store.ResultRow{TargetID: e.target.ID, Result: r, RTT: &rtt, State: catchment.StateSite, Site: "ams", Identity: "ams1.k"}
	if _, err := e.db.IngestBatch(ctx, []store.ResultRow{row}); err != nil {
		t.Fatal(err)
	}
	tail := get()
	if tail.Total.Probes != before.Total.Probes+1 || tail.Total.Count != before.Total.Count+1 {
		t.Errorf("after a result the rollup has not seen: %d probes, %d results; want %d and %d",
			tail.Total.Probes, tail.Total.Count, before.Total.Probes+1, before.Total.Count+1)
	}

	// Once rolled up it is in the blocks, and not counted twice.
	if err := e.db.RollupResults(ctx, e.now.Add(-3*time.Hour), e.now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if after := get(); after.Total.Probes != tail.Total.Probes || after.Total.Count != tail.Total.Count {
		t.Errorf("after the rollup: %d probes, %d results; want %d and %d as before it", after.Total.Probes, after.Total.Count, tail.Total.Probes, tail.Total.Count)
	}
}
