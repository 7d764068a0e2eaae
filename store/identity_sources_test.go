package store

import (
	"context"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// TestIdentitySources: rules with the sources beyond CHAOS are stored,
// the naming source is kept with each result and track, and a weaker
// source does not undo a fresh stronger one across batches.
func TestIdentitySources(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "cdn")
	rules := []catchment.Rule{
		{Source: "http_header:cf-ray", Match: catchment.MatchRegex, Pattern: `-(?P<site>[A-Z]{3})$`},
		{Source: catchment.SourceTraceHop, Match: catchment.MatchPrefix, Pattern: "198.18.5.0/24", Site: "gru"},
		{Source: catchment.SourceEgressAddr, Match: catchment.MatchPrefix, Pattern: "64.233.162.0/24", Site: "gru"},
		{Source: catchment.SourceHTTPBody, Match: catchment.MatchRegex, Pattern: `(?m)^colo=(?P<site>[A-Z]{3})$`},
		{Source: catchment.SourceNTPRefID, Match: catchment.MatchExact, Pattern: "GPS", Site: "ams"},
	}
	if err := db.ReplaceRules(ctx, tg.ID, rules); err != nil {
		t.Fatalf("ReplaceRules with new sources: %v", err)
	}
	got, err := db.ListRules(ctx, tg.ID)
	if err != nil || len(got) != len(rules) || got[1].Match != catchment.MatchPrefix {
		t.Fatalf("ListRules: got %+v, %v", got, err)
	}
	if err := db.ReplaceRules(ctx, tg.ID, []catchment.Rule{{Source: "http_header:Bad Name", Match: "regex", Pattern: "x", Site: "a"}}); err == nil {
		t.Error("a malformed header source was stored")
	}

	httpRow := func(ts time.Time, ray string) ResultRow {
		r := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: "p1", Measurement: "cdn/http", Kind: measure.KindHTTP,
			Time: ts, Dst: "198.18.53.53", AF: 4, HTTP: &measure.HTTPResult{URL: "http://198.18.53.53/", Status: 200, ConnectMS: 2,
				Headers: []measure.HTTPHeader{{Name: "cf-ray", Value: ray}}}}
		return ResultRow{TargetID: tg.ID, Result: r, RTT: fp(2), State: catchment.StateSite, Site: "ams", Identity: ray, Source: "http_header:cf-ray"}
	}
	traceRow := func(ts time.Time) ResultRow {
		r := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: "p1", Measurement: "cdn/trace", Kind: measure.KindTrace,
			Time: ts, Dst: "198.18.53.53", AF: 4, Trace: &measure.TraceResult{Proto: "icmp", Mode: "raw", Reached: true,
				Hops: []measure.Hop{{TTL: 1, Probes: []measure.HopProbe{{From: "198.18.5.1", RTT: 1}}}, {TTL: 2, Probes: []measure.HopProbe{{From: "198.18.53.53", RTT: 2}}}}}}
		return ResultRow{TargetID: tg.ID, Result: r, RTT: fp(2), State: catchment.StateSite, Site: "gru", Identity: "198.18.5.1", Source: "trace_hop"}
	}
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i, rows := range [][]ResultRow{
		{httpRow(t0, "838b4de849121c7b-AMS")},
		{traceRow(t0.Add(10 * time.Second))}, // weaker, fresh http: held
	} {
		if _, err := db.IngestBatch(ctx, rows); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	var src, site string
	if err := db.Pool().QueryRow(ctx, `SELECT id_source, site FROM results WHERE target_id = $1 AND kind = 'trace'`, tg.ID).Scan(&src, &site); err != nil {
		t.Fatal(err)
	}
	if src != "trace_hop" || site != "gru" {
		t.Errorf("trace result: got id_source %q site %q, want trace_hop gru", src, site)
	}
	latest, err := db.LatestCatchment(ctx, tg.ID)
	if err != nil || len(latest) != 1 {
		t.Fatalf("LatestCatchment: %+v, %v", latest, err)
	}
	l := latest[0]
	if l.Site != "ams" || l.Source != "http_header:cf-ray" || !l.SourceAt.Equal(t0) || !l.ObservedAt.Equal(t0.Add(10*time.Second)) {
		t.Errorf("track: got site %q source %q at %s observed %s; want ams from http_header:cf-ray at %s, observed 10 s later",
			l.Site, l.Source, l.SourceAt, l.ObservedAt, t0)
	}
	// Once the header evidence is stale, the trace hop moves the track.
	if _, err := db.IngestBatch(ctx, []ResultRow{traceRow(t0.Add(catchment.SourceHold + time.Minute))}); err != nil {
		t.Fatal(err)
	}
	latest, _ = db.LatestCatchment(ctx, tg.ID)
	if latest[0].Site != "gru" || latest[0].Source != "trace_hop" {
		t.Errorf("after the hold: got %q from %q, want gru from trace_hop", latest[0].Site, latest[0].Source)
	}
}

// TestReidentifySources: re-applying rules rewrites the naming source and
// clears the site of traces the new rules no longer map.
func TestReidentifySources(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "silent")
	ts := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	r := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: "p1", Measurement: "silent/trace", Kind: measure.KindTrace,
		Time: ts, Dst: "198.18.53.53", AF: 4, Trace: &measure.TraceResult{Proto: "icmp", Mode: "raw", Reached: true,
			Hops: []measure.Hop{{TTL: 1, Probes: []measure.HopProbe{{From: "198.18.5.1", RTT: 1}}}, {TTL: 2, Probes: []measure.HopProbe{{From: "198.18.53.53", RTT: 2}}}}}}
	if _, err := db.IngestBatch(ctx, []ResultRow{{TargetID: tg.ID, Result: r, RTT: fp(2)}}); err != nil { // stored before any rule
		t.Fatal(err)
	}
	read := func() (site, source *string) {
		t.Helper()
		if err := db.Pool().QueryRow(ctx, `SELECT site, id_source FROM results WHERE target_id = $1`, tg.ID).Scan(&site, &source); err != nil {
			t.Fatal(err)
		}
		return site, source
	}
	withHop, _ := catchment.NewIdentifier(nil, []catchment.Rule{{Source: catchment.SourceTraceHop, Match: catchment.MatchPrefix, Pattern: "198.18.5.0/24", Site: "gru"}})
	st, err := db.Reidentify(ctx, tg.ID, time.Time{}, withHop)
	if err != nil {
		t.Fatal(err)
	}
	if site, source := read(); site == nil || *site != "gru" || source == nil || *source != "trace_hop" || st.Updated != 1 {
		t.Errorf("with a trace_hop rule: got site %v source %v (updated %d), want gru from trace_hop", site, source, st.Updated)
	}
	none, _ := catchment.NewIdentifier(nil, nil)
	if _, err := db.Reidentify(ctx, tg.ID, time.Time{}, none); err != nil {
		t.Fatal(err)
	}
	if site, source := read(); site != nil || source != nil {
		t.Errorf("without rules: got site %v source %v, want both cleared", site, source)
	}
	latest, _ := db.LatestCatchment(ctx, tg.ID)
	if len(latest) != 0 {
		t.Errorf("without rules the trace is no observation: got tracks %+v", latest)
	}
}

// TestUnmappedSource: an unmapped identity says which source it came from,
// so the rule it needs can name that source.
func TestUnmappedSource(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "unmapped")
	ts := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	r := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: "p1", Measurement: "u/http", Kind: measure.KindHTTP,
		Time: ts, Dst: "198.18.53.53", AF: 4, HTTP: &measure.HTTPResult{URL: "http://198.18.53.53/", Status: 200,
			Headers: []measure.HTTPHeader{{Name: "x-pop", Value: "edge-zzz"}}}}
	row := ResultRow{TargetID: tg.ID, Result: r, State: catchment.StateUnidentified, Identity: "edge-zzz", Source: "http_header:x-pop"}
	if _, err := db.IngestBatch(ctx, []ResultRow{row}); err != nil {
		t.Fatal(err)
	}
	us, err := db.Unmapped(ctx, tg.ID)
	if err != nil || len(us) != 1 || us[0].Identity != "edge-zzz" || us[0].Source != "http_header:x-pop" {
		t.Errorf("got %+v, %v, want edge-zzz from http_header:x-pop", us, err)
	}
}
