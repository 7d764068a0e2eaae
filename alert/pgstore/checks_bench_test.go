package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/anycatch/anycatch/alert/pgstore"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// BenchmarkPeriodicChecks times one round of each periodic check (what the
// alerts role runs every 5 minutes for a target with such rules) over a
// seeded hour: ANYCATCH_CHECK_PROBES probes (default 2000) in 40
// countries, one identity result every 5 minutes each. The seeding is
// not timed.
func BenchmarkPeriodicChecks(b *testing.B) {
	probes := 2000
	if v, err := strconv.Atoi(os.Getenv("ANYCATCH_CHECK_PROBES")); err == nil && v > 0 && v <= 100000 {
		probes = v
	}
	f := setup(b)
	ctx := context.Background()
	for code, at := range map[string][2]float64{"ams": {52.3, 4.9}, "nrt": {35.7, 140.4}} {
		if err := f.db.PutSite(ctx, f.target.ID, store.Site{Code: code, Lat: fp(at[0]), Lon: fp(at[1])}); err != nil {
			b.Fatal(err)
		}
	}
	countries := []string{"DE", "FR", "NL", "GB", "IT", "ES", "PL", "SE", "JP", "KR", "US", "CA", "BR", "AR", "AU", "NZ", "ZA", "KE", "IN", "SG"}
	var rows []store.ResultRow
	flush := func() {
		if _, err := f.db.IngestBatch(ctx, rows); err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for i := range probes {
		id := fmt.Sprintf("b%05d", i)
		cc := countries[i%len(countries)]
		lat, lon := float64(i%120)-60, float64(i%340)-170
		if _, err := f.db.Pool().Exec(ctx, `INSERT INTO probes (id, country, continent, asn, declared_lat, declared_lon) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, cc, catchment.ContinentOf(cc), 64500+i%200, lat, lon); err != nil {
			b.Fatal(err)
		}
		for k := range 12 {
			ts := f.now.Add(-time.Duration(k*5)*time.Minute - time.Second)
			site := []string{"ams", "nrt"}[(i+k/6)%2]
			rtt := 5 + float64(i%300)
			r := &measure.Result{V: measure.Version, ID: measure.NewUUIDv7(ts), Probe: id, Measurement: "lab/identity",
				Target: "lab", Kind: measure.KindIdentity, Time: ts, Dst: "198.18.53.53", AF: 4, DurationMS: rtt + 1,
				DNS: &measure.DNSResult{Server: "198.18.53.53:53", Exchanges: []measure.DNSExchange{
					{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: rtt, Rcode: "NOERROR",
						Answers: []measure.RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: site + "1"}}}},
					Identity: &measure.Identity{HostnameBind: site + "1"}}}
			rows = append(rows, store.ResultRow{TargetID: f.target.ID, Result: r, RTT: fp(rtt), State: catchment.StateSite, Site: site, Identity: site + "1", Source: "hostname_bind"})
		}
		if len(rows) >= 2000 {
			flush()
		}
	}
	if len(rows) > 0 {
		flush()
	}
	if err := f.db.RollupResults(ctx, f.now.Add(-2*time.Hour), f.now); err != nil {
		b.Fatal(err)
	}
	st := pgstore.Store{DB: f.db}
	from, to := f.now.Add(-time.Hour), f.now
	b.Run("regions", func(b *testing.B) {
		for b.Loop() {
			if m, err := st.ProbeRegions(ctx, f.target.ID); err != nil || len(m) != probes {
				b.Fatalf("%d regions, %v", len(m), err)
			}
		}
	})
	b.Run("speed_of_light", func(b *testing.B) {
		var n int
		for b.Loop() {
			fs, err := st.SpeedOfLight(ctx, f.target.ID, from, to)
			if err != nil {
				b.Fatal(err)
			}
			n = len(fs)
		}
		b.ReportMetric(float64(n), "findings")
	})
	b.Run("inflation", func(b *testing.B) {
		var n int
		for b.Loop() {
			fs, err := st.Inflation(ctx, f.target.ID, from, to)
			if err != nil {
				b.Fatal(err)
			}
			n = len(fs)
		}
		b.ReportMetric(float64(n), "findings")
	})
}
