package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openDB(t testing.TB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, pgtest.NewURL(t), Options{MaxConns: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func fp(f float64) *float64 { return &f }

var base = time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)

func identityResult(probe string, ts time.Time, ident string) *measure.Result {
	r := &measure.Result{
		V: measure.Version, ID: measure.NewUUIDv7(ts), Probe: probe, Measurement: "k-root/identity",
		Target: "k-root", Kind: measure.KindIdentity, Time: ts, Dst: "198.18.53.53", AF: 4, DurationMS: 12.5,
		DNS: &measure.DNSResult{Server: "198.18.53.53:53", Exchanges: []measure.DNSExchange{
			{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: 11.25, Rcode: "NOERROR",
				Flags: []string{"qr", "aa"}, Answers: []measure.RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: ident}},
				Raw: []byte{0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0, 0xff}},
			{QName: "id.server.", QClass: "CH", QType: "TXT", Proto: "udp", Error: "timeout"},
			{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: 11.5, NSID: ident, NSIDHex: "6e73",
				Raw: []byte{0, 0, 0x80}},
		}, Identity: &measure.Identity{HostnameBind: ident, NSID: ident}},
	}
	if ident == "" {
		r.DNS.Exchanges = r.DNS.Exchanges[1:2]
		r.DNS.Identity = nil
	}
	return r
}

func pingResult(probe string, ts time.Time) *measure.Result {
	return &measure.Result{
		V: measure.Version, ID: measure.NewUUIDv7(ts), Probe: probe, Measurement: "k-root/ping", Target: "k-root",
		Kind: measure.KindPing, Time: ts, Dst: "2001:db8::53", AF: 6,
		Ping: &measure.PingResult{Mode: "dgram", Size: 56, Sent: 3, Received: 3, Min: fp(10.5), Avg: fp(11), Median: fp(11), Max: fp(11.5),
			Replies: []measure.PingReply{{Seq: 0, RTT: 10.5, TTL: 57}, {Seq: 1, RTT: 11, TTL: 57}, {Seq: 2, RTT: 11.5, TTL: 57}}},
	}
}

// identityRow is an identity result classified as site (or unidentified
// when site is "", unreachable when ident is "").
func identityRow(target int, probe string, ts time.Time, ident, site string) ResultRow {
	r := identityResult(probe, ts, ident)
	row := ResultRow{TargetID: target, Result: r, Identity: ident, Site: site}
	switch {
	case ident == "":
		row.State = catchment.StateUnreachable
	case site == "":
		row.State = catchment.StateUnidentified
	default:
		row.State = catchment.StateSite
		row.RTT = fp(11.25)
	}
	return row
}

func newTarget(t *testing.T, db *DB, name string) *Target {
	t.Helper()
	tg := &Target{Name: name, Addr4: "198.18.53.53", Enabled: true}
	if err := db.CreateTarget(context.Background(), tg); err != nil {
		t.Fatalf("CreateTarget: %v", err)
	}
	return tg
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate on a migrated database: %v", err)
	}
	cur, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur != latest || latest < 1 {
		t.Errorf("schema version = %d of %d, want current = latest >= 1", cur, latest)
	}
}

func TestTargetsSitesRules(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()

	tg := &Target{Name: "k-root", Description: "K", Addr4: "193.0.14.129", Addr6: "2001:7fd::1",
		Specs: []measure.Spec{{Kind: measure.KindIdentity}}, Enabled: true}
	if err := db.CreateTarget(ctx, tg); err != nil {
		t.Fatalf("CreateTarget: %v", err)
	}
	if tg.ID == 0 || tg.IntervalSec != 300 || len(tg.IdentityOrder) != 3 {
		t.Errorf("after create: id %d interval %d order %v, want id set, 300, default order", tg.ID, tg.IntervalSec, tg.IdentityOrder)
	}
	got, err := db.GetTarget(ctx, "k-root")
	if err != nil {
		t.Fatalf("GetTarget: %v", err)
	}
	if got.Addr4 != tg.Addr4 || got.Addr6 != tg.Addr6 || !reflect.DeepEqual(got.Specs, tg.Specs) || !got.Enabled {
		t.Errorf("GetTarget = %+v, want %+v", got, tg)
	}

	errCases := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate name", db.CreateTarget(ctx, &Target{Name: "k-root", Addr4: "198.51.100.1"}), ErrConflict},
		{"bad name", db.CreateTarget(ctx, &Target{Name: "K Root!", Addr4: "198.51.100.1"}), ErrInvalid},
		{"v6 in addr4", db.CreateTarget(ctx, &Target{Name: "x", Addr4: "2001:db8::1"}), ErrInvalid},
		{"no address", db.CreateTarget(ctx, &Target{Name: "y"}), ErrInvalid},
		{"get missing", func() error { _, err := db.GetTarget(ctx, "nope"); return err }(), ErrNotFound},
		{"update missing", db.UpdateTarget(ctx, &Target{ID: 9999, Name: "z", Addr4: "198.51.100.1", IntervalSec: 60}), ErrNotFound},
		{"delete missing", db.DeleteTarget(ctx, 9999), ErrNotFound},
		{"site of missing target", db.PutSite(ctx, 9999, Site{Code: "ams"}), ErrNotFound},
		{"bad site code", db.PutSite(ctx, tg.ID, Site{Code: "AMS!"}), ErrInvalid},
		{"delete missing site", db.DeleteSite(ctx, tg.ID, "nope"), ErrNotFound},
		{"rules of missing target", db.ReplaceRules(ctx, 9999, nil), ErrNotFound},
		{"bad rule source", db.ReplaceRules(ctx, tg.ID, []catchment.Rule{{Source: "bogus", Match: "exact", Pattern: "x"}}), ErrInvalid},
	}
	for _, tc := range errCases {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
		}
	}

	tg.Description, tg.IntervalSec, tg.Addr6 = "changed", 60, ""
	if err := db.UpdateTarget(ctx, tg); err != nil {
		t.Fatalf("UpdateTarget: %v", err)
	}
	if got, _ := db.GetTargetByID(ctx, tg.ID); got.Description != "changed" || got.IntervalSec != 60 || got.Addr6 != "" {
		t.Errorf("after update got %+v", got)
	}

	sites := []Site{
		{Code: "ams", Name: "Amsterdam", Lat: fp(52.37), Lon: fp(4.9), Unicast4: "198.51.100.10"},
		{Code: "lhr", Name: "London"},
	}
	for _, s := range sites {
		if err := db.PutSite(ctx, tg.ID, s); err != nil {
			t.Fatalf("PutSite: %v", err)
		}
	}
	sites[1].Name = "London Heathrow"
	if err := db.PutSite(ctx, tg.ID, sites[1]); err != nil {
		t.Fatalf("PutSite replace: %v", err)
	}
	gotSites, err := db.ListSites(ctx, tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotSites, sites) {
		t.Errorf("ListSites = %+v, want %+v", gotSites, sites)
	}

	rules := []catchment.Rule{
		{Source: "hostname_bind", Match: "regex", Pattern: `^k\d\.(?P<site>[a-z]+)\.`},
		{Source: "nsid", Match: "exact", Pattern: "lhr-1", Site: "lhr", Note: "operator list 2026-11"},
	}
	if err := db.ReplaceRules(ctx, tg.ID, rules); err != nil {
		t.Fatal(err)
	}
	if err := db.ReplaceRules(ctx, tg.ID, rules[1:]); err != nil {
		t.Fatal(err)
	}
	gotRules, err := db.ListRules(ctx, tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotRules, rules[1:]) {
		t.Errorf("ListRules = %+v, want %+v", gotRules, rules[1:])
	}

	list, err := db.ListTargets(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListTargets = %v, %v; want 1 target", list, err)
	}
	if err := db.DeleteTarget(ctx, tg.ID); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.ListSites(ctx, tg.ID); len(s) != 0 {
		t.Errorf("sites after target delete = %v, want none", s)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIngestRoundTrip(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "k-root")
	rows := []ResultRow{
		identityRow(tg.ID, "p-1", base, "k1.ams.example", "ams"),
		{TargetID: tg.ID, Result: pingResult("p-1", base.Add(time.Second)), RTT: fp(11), Loss: fp(0)},
		identityRow(tg.ID, "p-2", base.Add(2*time.Second), "", ""),
		{TargetID: tg.ID, Result: &measure.Result{V: 1, ID: measure.NewUUIDv7(base), Probe: "p-3", Measurement: "m", Kind: measure.KindPing,
			Time: base.Add(3 * time.Second), Dst: "198.18.53.53", AF: 4, Error: "no route to host"}},
	}
	inserted, err := db.IngestBatch(ctx, rows)
	if err != nil {
		t.Fatalf("IngestBatch: %v", err)
	}
	if want := []bool{true, true, true, true}; !reflect.DeepEqual(inserted, want) {
		t.Errorf("inserted = %v, want %v", inserted, want)
	}
	got, next, err := db.ResultPage(ctx, ResultQuery{TargetID: tg.ID})
	if err != nil {
		t.Fatal(err)
	}
	if next != nil {
		t.Errorf("next page = %+v, want nil", next)
	}
	if len(got) != len(rows) {
		t.Fatalf("read %d results, want %d", len(got), len(rows))
	}
	for i := range rows {
		if g, w := jsonOf(t, got[i]), jsonOf(t, rows[i].Result); g != w {
			t.Errorf("result %d read back:\n got %s\nwant %s", i, g, w)
		}
	}
	if g := got[0].DNS.Exchanges[0].Raw; !reflect.DeepEqual(g, rows[0].Result.DNS.Exchanges[0].Raw) {
		t.Errorf("abuf = %x, want %x", g, rows[0].Result.DNS.Exchanges[0].Raw)
	}
	// The payload column holds no raw bytes: they live in raw.
	var withAbuf int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM results WHERE payload::text LIKE '%abuf%'`).Scan(&withAbuf); err != nil {
		t.Fatal(err)
	}
	if withAbuf != 0 {
		t.Errorf("%d payloads contain abuf, want 0", withAbuf)
	}
}

func TestIngestDuplicates(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "k-root")
	a := identityRow(tg.ID, "p-1", base, "k1.ams.example", "ams")
	b := identityRow(tg.ID, "p-1", base.Add(time.Minute), "k1.ams.example", "ams")
	c := ResultRow{TargetID: tg.ID, Result: pingResult("p-1", base.Add(2*time.Minute))}

	for _, tc := range []struct {
		name string
		rows []ResultRow
		want []bool
	}{
		{"first upload", []ResultRow{a, b}, []bool{true, true}},
		{"retry of the same upload", []ResultRow{a, b}, []bool{false, false}},
		{"retry with a new row", []ResultRow{b, c, a}, []bool{false, true, false}},
		{"same id twice in one batch", []ResultRow{c, c}, []bool{false, false}},
	} {
		got, err := db.IngestBatch(ctx, tc.rows)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: inserted = %v, want %v", tc.name, got, tc.want)
		}
	}
	d := ResultRow{TargetID: tg.ID, Result: pingResult("p-1", base.Add(3*time.Minute))}
	got, err := db.IngestBatch(ctx, []ResultRow{d, d})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("new id twice in one batch: inserted = %v, want %v", got, want)
	}
	var n int
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM results`).Scan(&n)
	if n != 4 {
		t.Errorf("stored %d results, want 4", n)
	}
	changes, err := db.TrackChanges(ctx, catchment.Key{Target: tg.ID, Probe: "p-1", AF: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Errorf("changes after duplicate uploads = %d, want 1 (first observation only)", len(changes))
	}
}

func TestIngestCatchment(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "k-root")
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	// Deliberately out of time order: the fold must sort.
	rows := []ResultRow{
		identityRow(tg.ID, "p-1", at(3), "k1.lhr.example", "lhr"),
		identityRow(tg.ID, "p-1", at(1), "k1.ams.example", "ams"),
		identityRow(tg.ID, "p-1", at(2), "k2.ams.example", "ams"),
		identityRow(tg.ID, "p-1", at(4), "", ""),
		identityRow(tg.ID, "p-2", at(1), "mystery-7", ""),
		{TargetID: tg.ID, Result: pingResult("p-1", at(5))}, // not a catchment observation
	}
	if _, err := db.IngestBatch(ctx, rows); err != nil {
		t.Fatal(err)
	}
	latest, err := db.LatestCatchment(ctx, tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	type lt struct {
		Probe, State, Site, Identity string
		Observed, Since              time.Time
	}
	var gotL []lt
	for _, l := range latest {
		gotL = append(gotL, lt{l.Probe, string(l.State), l.Site, l.Identity, l.ObservedAt, l.Since})
	}
	us := func(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
	wantL := []lt{
		{"p-1", "unreachable", "lhr", "k1.lhr.example", us(at(4)), us(at(3))},
		{"p-2", "unidentified", "", "mystery-7", us(at(1)), us(at(1))},
	}
	if !reflect.DeepEqual(gotL, wantL) {
		t.Errorf("latest:\n got %+v\nwant %+v", gotL, wantL)
	}

	type ch struct {
		From, To string
		At       time.Time
	}
	describe := func(k catchment.Key) []ch {
		cs, err := db.TrackChanges(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var out []ch
		for _, c := range cs {
			from := "-"
			if c.From != nil {
				from = string(c.From.State) + ":" + c.From.Site
			}
			out = append(out, ch{from, string(c.To.State) + ":" + c.To.Site, c.Time})
		}
		return out
	}
	if got, want := describe(catchment.Key{Target: tg.ID, Probe: "p-1", AF: 4}), []ch{
		{"-", "site:ams", us(at(1))},
		{"site:ams", "site:lhr", us(at(3))},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("p-1 changes:\n got %+v\nwant %+v", got, want)
	}
	if got, want := describe(catchment.Key{Target: tg.ID, Probe: "p-2", AF: 4}), []ch{
		{"-", "unidentified:", us(at(1))},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("p-2 changes:\n got %+v\nwant %+v", got, want)
	}

	// A later batch: back to ams from unreachable is one change lhr -> ams;
	// a late result older than the latest state changes nothing.
	if _, err := db.IngestBatch(ctx, []ResultRow{
		identityRow(tg.ID, "p-1", at(6), "k1.ams.example", "ams"),
		identityRow(tg.ID, "p-1", at(0), "k9.fra.example", "fra"),
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := describe(catchment.Key{Target: tg.ID, Probe: "p-1", AF: 4}), []ch{
		{"-", "site:ams", us(at(1))},
		{"site:ams", "site:lhr", us(at(3))},
		{"unreachable:lhr", "site:ams", us(at(6))},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("p-1 changes after second batch:\n got %+v\nwant %+v", got, want)
	}
}

func TestResultPagination(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "k-root")
	var rows []ResultRow
	for i := range 25 {
		probe := []string{"p-1", "p-2"}[i%2]
		rows = append(rows, identityRow(tg.ID, probe, base.Add(time.Duration(i)*time.Hour), "k1.ams.example", "ams"),
			ResultRow{TargetID: tg.ID, Result: pingResult(probe, base.Add(time.Duration(i)*time.Hour))})
	}
	if _, err := db.IngestBatch(ctx, rows); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		q         ResultQuery
		want      int
		wantPages int
	}{
		{"all", ResultQuery{TargetID: tg.ID, Limit: 10}, 50, 5},
		{"one kind", ResultQuery{TargetID: tg.ID, Kind: measure.KindPing, Limit: 10}, 25, 3},
		{"one probe in a range", ResultQuery{TargetID: tg.ID, Probe: "p-1", From: base, To: base.Add(10 * time.Hour), Limit: 4}, 10, 3},
		{"other target", ResultQuery{TargetID: tg.ID + 1}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &tc.q
			var got []*measure.Result
			pages := 0
			for q != nil && pages < 100 {
				var page []*measure.Result
				var err error
				page, q, err = db.ResultPage(ctx, *q)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, page...)
				pages++
			}
			if len(got) != tc.want || pages != tc.wantPages {
				t.Errorf("got %d results in %d pages, want %d in %d", len(got), pages, tc.want, tc.wantPages)
			}
			seen := map[measure.UUID]bool{}
			for i, r := range got {
				if seen[r.ID] {
					t.Errorf("result %s returned twice", r.ID)
				}
				seen[r.ID] = true
				if i > 0 && r.Time.Before(got[i-1].Time) {
					t.Errorf("result %d at %v before its predecessor at %v", i, r.Time, got[i-1].Time)
				}
			}
			var streamed int
			sq := tc.q
			sq.Limit = 0
			if err := db.StreamResults(ctx, sq, func(r *measure.Result) error { streamed++; return nil }); err != nil {
				t.Fatal(err)
			}
			if streamed != tc.want {
				t.Errorf("StreamResults gave %d results, want %d", streamed, tc.want)
			}
		})
	}
	stop := errors.New("enough")
	n := 0
	err := db.StreamResults(ctx, ResultQuery{TargetID: tg.ID}, func(*measure.Result) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("StreamResults stopping early: err %v after %d, want %v after 3", err, n, stop)
	}
}

func TestMaintainPartitions(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	tg := newTarget(t, db, "k-root")
	// An old result creates its day's partition on demand.
	if _, err := db.IngestBatch(ctx, []ResultRow{{TargetID: tg.ID, Result: pingResult("p-1", now.AddDate(0, 0, -40))}}); err != nil {
		t.Fatal(err)
	}
	created, dropped, err := db.MaintainPartitions(ctx, now, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"results_p20261121", "results_p20261122", "results_p20261123"}; !reflect.DeepEqual(created, want) || dropped != nil {
		t.Errorf("first run: created %v dropped %v, want %v and none", created, dropped, want)
	}
	created, _, err = db.MaintainPartitions(ctx, now, 2, 0)
	if err != nil || created != nil {
		t.Errorf("second run: created %v err %v, want nothing", created, err)
	}
	// 30 days of retention at 05:00 on the 21st: the day ending exactly at
	// the cutoff... 2026-10-22 05:00 keeps 2026-10-22, drops 2026-10-12.
	_, dropped, err = db.MaintainPartitions(ctx, now, 0, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"results_p20261012"}; !reflect.DeepEqual(dropped, want) {
		t.Errorf("dropped %v, want %v", dropped, want)
	}
	parts, err := db.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"results_p20261121", "results_p20261122", "results_p20261123"}; !reflect.DeepEqual(parts, want) {
		t.Errorf("partitions %v, want %v", parts, want)
	}
	// Ingest into the dropped day again: the stale cache entry is noticed.
	if _, err := db.IngestBatch(ctx, []ResultRow{{TargetID: tg.ID, Result: pingResult("p-1", now.AddDate(0, 0, -40))}}); err != nil {
		t.Errorf("ingest into a dropped day: %v", err)
	}
}

func TestPartitionBoundaryDropRetention(t *testing.T) {
	for _, tc := range []struct {
		name      string
		now       time.Time
		retention time.Duration
		want      []string
	}{
		{"day ends exactly at cutoff", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 24 * time.Hour, []string{"results_p20261119"}},
		{"day not yet wholly old", time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC), 24 * time.Hour, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			ctx := context.Background()
			if _, err := db.createPartition(ctx, time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
			_, dropped, err := db.MaintainPartitions(ctx, tc.now, 0, tc.retention)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dropped, tc.want) {
				t.Errorf("dropped %v, want %v", dropped, tc.want)
			}
		})
	}
}

func TestConcurrentIngestCreatesPartitionsOnce(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := newTarget(t, db, "k-root")
	// Separate DB handles have separate partition caches, like two servers.
	other, err := Open(ctx, db.Pool().Config().ConnString(), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		h := db
		if w%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rows []ResultRow
			// Every batch touches every track, in a different order.
			for d := range 5 {
				ts := base.AddDate(0, 0, d).Add(time.Duration(w) * time.Second)
				rows = append(rows, identityRow(tg.ID, fmt.Sprintf("p-%d", (w+d)%3), ts, "k1.ams.example", "ams"))
			}
			if _, err := h.IngestBatch(ctx, rows); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent ingest: %v", err)
	}
	var n int
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM results`).Scan(&n)
	if n != 40 {
		t.Errorf("stored %d results, want 40", n)
	}
	// Each track's changes are consistent: only the first observation.
	for p := range 3 {
		cs, err := db.TrackChanges(ctx, catchment.Key{Target: tg.ID, Probe: fmt.Sprintf("p-%d", p), AF: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].From != nil {
			t.Errorf("p-%d: %d changes, want exactly the first observation", p, len(cs))
		}
	}
}
