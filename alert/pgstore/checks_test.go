package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/alert"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

func fp(f float64) *float64 { return &f }

// locate gives the fixture's sites locations and adds probes with a
// country, an ASN and a declared location, as enrollment and GeoIP would.
func (f *fixture) locate(t *testing.T, probes map[string][3]any) {
	t.Helper()
	ctx := context.Background()
	for code, at := range map[string][2]float64{"ams": {52.3, 4.9}, "nrt": {35.7, 140.4}} {
		if err := f.db.PutSite(ctx, f.target.ID, store.Site{Code: code, Lat: fp(at[0]), Lon: fp(at[1])}); err != nil {
			t.Fatal(err)
		}
	}
	for id, p := range probes { // country, asn, [lat, lon]
		ll := p[2].([2]float64)
		if _, err := f.db.Pool().Exec(ctx, `INSERT INTO probes (id, country, continent, asn, declared_lat, declared_lon) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, p[0], catchment.ContinentOf(p[0].(string)), p[1], ll[0], ll[1]); err != nil {
			t.Fatal(err)
		}
	}
}

// ingest stores an identity result of probe answered by site after rtt ms
// at the fixture's time, as the collector does (results, catchment_latest
// and catchment_changes in one batch).
func (f *fixture) ingest(t *testing.T, probe, site string, rtt float64) {
	t.Helper()
	ts := f.now.Add(-time.Second)
	r := &measure.Result{V: measure.Version, ID: measure.NewUUIDv7(ts), Probe: probe, Measurement: "lab/identity",
		Target: "lab", Kind: measure.KindIdentity, Time: ts, Dst: "198.18.53.53", AF: 4, DurationMS: rtt + 1,
		DNS: &measure.DNSResult{Server: "198.18.53.53:53", Exchanges: []measure.DNSExchange{
			{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: rtt, Rcode: "NOERROR", Flags: []string{"qr", "aa"},
				Answers: []measure.RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: site + "1"}}}},
			Identity: &measure.Identity{HostnameBind: site + "1"}}}
	row := store.ResultRow{TargetID: f.target.ID, Result: r, RTT: fp(rtt), State: catchment.StateSite, Site: site, Identity: site + "1", Source: "hostname_bind"}
	if _, err := f.db.IngestBatch(context.Background(), []store.ResultRow{row}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) tick(t *testing.T) {
	t.Helper()
	if err := f.svc.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.svc.Wait()
}

func firingOf(t *testing.T, f *fixture, kind alert.Kind) []alert.Alert {
	t.Helper()
	all, err := f.svc.Alerts(context.Background(), alert.AlertQuery{Status: alert.StatusFiring})
	if err != nil {
		t.Fatal(err)
	}
	var out []alert.Alert
	for _, a := range all {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

var (
	frankfurt = [2]float64{50.1, 8.7}
	tokyo     = [2]float64{35.7, 139.7}
)

// TestServiceRegionFlap: two German probes flapping between ams and nrt
// fire one country:DE alert, from results through the collector's
// catchment state to the rule; a single flapping Japanese probe does not.
func TestServiceRegionFlap(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.locate(t, map[string][3]any{"de1": {"DE", 64500, frankfurt}, "de2": {"DE", 64500, frankfurt}, "de3": {"DE", 64501, frankfurt},
		"jp1": {"JP", 64510, tokyo}})
	if _, err := f.svc.CreateRule(ctx, alert.Rule{Target: "lab", Kind: alert.KindRegionFlap, Region: alert.RegionCountry, Threshold: 1,
		WindowSec: 120, FlapChanges: 3, ResolveSec: -1, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	var events []string
	for i := range 8 {
		away := map[bool]string{true: "nrt", false: "ams"}[i%2 == 1]
		f.ingest(t, "de1", away, 20)
		f.ingest(t, "de2", away, 20)
		f.ingest(t, "de3", "ams", 10)
		f.ingest(t, "jp1", map[bool]string{true: "ams", false: "nrt"}[i%2 == 1], 200)
		f.tick(t)
		for _, a := range firingOf(t, f, alert.KindRegionFlap) {
			events = append(events, fmt.Sprintf("i=%d %s %v", i, a.Subject, a.Probes))
		}
		f.now = f.now.Add(10 * time.Second)
	}
	// Changes at i=1,2,3: the third makes de1 and de2 flappers; the alert
	// stays one alert while the flapping goes on.
	if len(events) == 0 || events[0] != "i=3 country:DE [de1 de2]" {
		t.Fatalf("firing region_flap alerts over the ticks: %q", events)
	}
	all, _ := f.svc.Alerts(ctx, alert.AlertQuery{})
	if len(all) != 1 {
		t.Errorf("%d alerts stored, want one (no storm, jp1 alone is no region flapping): %+v", len(all), all)
	}
	// Calm: after the window no probe has 3 changes in it any more.
	for range 14 {
		f.ingest(t, "de1", "ams", 20)
		f.ingest(t, "de2", "ams", 20)
		f.tick(t)
		f.now = f.now.Add(10 * time.Second)
	}
	if got := firingOf(t, f, alert.KindRegionFlap); len(got) != 0 {
		t.Errorf("still firing after the flapping stopped: %+v", got)
	}
}

// TestServiceSpeedOfLightAndInflation: a Tokyo probe answered by ams in
// 5 ms is physically impossible; a Frankfurt probe reaching nrt in 250 ms
// while its neighbours reach ams in ~10 ms is inflated. Both checks run
// at the slow cadence: results arriving between checks are not seen
// until the next one.
func TestServiceSpeedOfLightAndInflation(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.locate(t, map[string][3]any{"de1": {"DE", 64500, frankfurt}, "de2": {"DE", 64500, frankfurt}, "de3": {"DE", 64501, frankfurt},
		"jp1": {"JP", 64510, tokyo}, "jp2": {"JP", 64510, tokyo}})
	for _, k := range []alert.Kind{alert.KindSpeedOfLight, alert.KindInflation} {
		if _, err := f.svc.CreateRule(ctx, alert.Rule{Target: "lab", Kind: k, Threshold: 0, MinProbes: 1, ResolveSec: -1, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	f.ingest(t, "de1", "ams", 10)
	f.ingest(t, "de2", "ams", 11)
	f.ingest(t, "jp2", "nrt", 3)
	f.tick(t)
	if got := append(firingOf(t, f, alert.KindSpeedOfLight), firingOf(t, f, alert.KindInflation)...); len(got) != 0 {
		t.Fatalf("firing with nothing wrong: %+v", got)
	}
	f.now = f.now.Add(10 * time.Second)
	f.ingest(t, "jp1", "ams", 5)
	f.ingest(t, "de3", "nrt", 250)
	f.tick(t) // 10 s after the last check: not checked again yet
	if got := firingOf(t, f, alert.KindSpeedOfLight); len(got) != 0 {
		t.Fatalf("checked before the check period: %+v", got)
	}
	f.now = f.now.Add(5 * time.Minute)
	f.ingest(t, "de1", "ams", 10) // keep the tracks current
	f.tick(t)
	sol := firingOf(t, f, alert.KindSpeedOfLight)
	if len(sol) != 1 || sol[0].Value != 1 || len(sol[0].Probes) != 1 || !strings.HasPrefix(sol[0].Probes[0], "probe jp1 -> site ams: 1 of 1 results faster than light") {
		t.Errorf("speed_of_light alerts %+v, want one naming jp1 -> ams", sol)
	}
	inf := firingOf(t, f, alert.KindInflation)
	if len(inf) != 1 || inf[0].Value != 1 || len(inf[0].Probes) != 1 || !strings.HasPrefix(inf[0].Probes[0], "probe de3 (EU) -> site nrt: 250.0 ms") {
		t.Errorf("inflation alerts %+v, want one naming de3", inf)
	}
	// The payload carries the sample: a webhook sees which pairs.
	if len(sol) == 1 && !slices.ContainsFunc(sol[0].Probes, func(s string) bool { return strings.Contains(s, "km needs") }) {
		t.Errorf("sample without the distance: %q", sol[0].Probes)
	}
}
