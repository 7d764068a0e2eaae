package web_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
	"github.com/anycatch/anycatch/web"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type site struct {
	code, name string
	lat, lon   float64
}

var sites = []site{
	{"ams", "Amsterdam", 52.31, 4.76},
	{"iad", "Ashburn", 39.04, -77.49},
	{"sjc", "San Jose", 37.36, -121.93},
	{"gru", "São Paulo", -23.43, -46.47},
	{"sin", "Singapore", 1.35, 103.99},
	{"syd", "Sydney", -33.94, 151.18},
	{"jnb", "Johannesburg", -26.14, 28.24},
}

type city struct {
	cc, cont, name string
	lat, lon       float64
	asn            int64
	asName         string
	weight         int
}

var cities = []city{
	{"GB", "EU", "London", 51.51, -0.13, 2856, "BT", 6}, {"IE", "EU", "Dublin", 53.35, -6.26, 5466, "Eir", 2},
	{"DE", "EU", "Berlin", 52.52, 13.40, 3320, "Deutsche Telekom", 6}, {"DE", "EU", "Munich", 48.14, 11.58, 3209, "Vodafone", 4},
	{"FR", "EU", "Paris", 48.86, 2.35, 3215, "Orange", 6}, {"NL", "EU", "Utrecht", 52.09, 5.12, 1136, "KPN", 4},
	{"ES", "EU", "Madrid", 40.42, -3.70, 3352, "Telefonica", 4}, {"IT", "EU", "Milan", 45.46, 9.19, 3269, "Telecom Italia", 4},
	{"PL", "EU", "Warsaw", 52.23, 21.01, 5617, "Orange Polska", 3}, {"SE", "EU", "Stockholm", 59.33, 18.07, 3301, "Telia", 2},
	{"RU", "EU", "Moscow", 55.76, 37.62, 12389, "Rostelecom", 4}, {"TR", "AS", "Istanbul", 41.01, 28.98, 9121, "Turk Telekom", 2},
	{"US", "NA", "New York", 40.71, -74.01, 7922, "Comcast", 8}, {"US", "NA", "Chicago", 41.88, -87.63, 7018, "AT&T", 5},
	{"US", "NA", "Dallas", 32.78, -96.80, 701, "Verizon", 4}, {"US", "NA", "Seattle", 47.61, -122.33, 20115, "Charter", 4},
	{"US", "NA", "Los Angeles", 34.05, -118.24, 7018, "AT&T", 5}, {"CA", "NA", "Toronto", 43.65, -79.38, 812, "Rogers", 4},
	{"MX", "NA", "Mexico City", 19.43, -99.13, 8151, "Telmex", 3}, {"BR", "SA", "São Paulo", -23.55, -46.63, 28573, "Claro", 5},
	{"AR", "SA", "Buenos Aires", -34.60, -58.38, 7303, "Telecom Argentina", 3}, {"CL", "SA", "Santiago", -33.45, -70.67, 7418, "Entel", 2},
	{"CO", "SA", "Bogotá", 4.71, -74.07, 3816, "Colombia Telecom", 2}, {"JP", "AS", "Tokyo", 35.68, 139.69, 2516, "KDDI", 6},
	{"KR", "AS", "Seoul", 37.57, 126.98, 4766, "Korea Telecom", 3}, {"IN", "AS", "Mumbai", 19.08, 72.88, 55836, "Reliance Jio", 5},
	{"IN", "AS", "Delhi", 28.61, 77.21, 9498, "Bharti Airtel", 4}, {"SG", "AS", "Singapore", 1.29, 103.85, 4773, "Singtel", 2},
	{"ID", "AS", "Jakarta", -6.21, 106.85, 7713, "Telkom Indonesia", 3}, {"TH", "AS", "Bangkok", 13.76, 100.50, 45758, "TrueInternet", 2},
	{"CN", "AS", "Shanghai", 31.23, 121.47, 4812, "China Telecom", 3}, {"AU", "OC", "Sydney", -33.87, 151.21, 1221, "Telstra", 4},
	{"AU", "OC", "Perth", -31.95, 115.86, 4739, "iiNet", 2}, {"NZ", "OC", "Auckland", -36.85, 174.76, 9500, "One NZ", 2},
	{"ZA", "AF", "Johannesburg", -26.20, 28.05, 3741, "Dimension Data", 3}, {"NG", "AF", "Lagos", 6.52, 3.38, 29465, "MTN Nigeria", 2},
	{"KE", "AF", "Nairobi", -1.29, 36.82, 33771, "Safaricom", 2}, {"EG", "AF", "Cairo", 30.04, 31.24, 8452, "Telecom Egypt", 2},
	{"AE", "AS", "Dubai", 25.20, 55.27, 5384, "Etisalat", 2},
}

// world is a test deployment: the real API over a seeded database and the
// UI, on one loopback server.
type world struct {
	db      *store.DB
	srv     *httptest.Server
	now     time.Time
	change  time.Time // when the GB and IE probes moved from iad to ams
	target  string
	probes  int
	movedGB string // a probe that moved
}

// newWorld seeds one target with 7 sites and n probes, each reporting an
// identity result every 10 minutes for rounds rounds up to now-5m. Probes in
// GB and IE reach iad until world.change and ams after it. Some probes reach
// a farther site than the nearest (inflated), 2% answer with an identity
// that no rule maps, 1% do not answer.
func newWorld(t testing.TB, n, rounds int) *world {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, pgtest.NewURL(t), store.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	w := &world{db: db, now: time.Now().UTC().Truncate(time.Second), target: "k-root", probes: n}
	tg := store.Target{Name: w.target, Description: "K-root-like test service", Addr4: "198.18.53.53", IntervalSec: 600, Enabled: true,
		Specs: []measure.Spec{{Kind: measure.KindIdentity}, {Kind: measure.KindPing}}, IdentityOrder: []string{"hostname_bind", "id_server", "nsid"}}
	if err := db.CreateTarget(ctx, &tg); err != nil {
		t.Fatal(err)
	}
	var rules []catchment.Rule
	for _, s := range sites {
		lat, lon := s.lat, s.lon
		if err := db.PutSite(ctx, tg.ID, store.Site{Code: s.code, Name: s.name, Lat: &lat, Lon: &lon,
			Unicast4: fmt.Sprintf("198.18.%d.1", 10+len(rules))}); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, catchment.Rule{Source: "any", Match: "regex", Pattern: `^` + s.code + `[0-9]+\.k-root$`, Site: s.code, Note: s.name})
	}
	if err := db.ReplaceRules(ctx, tg.ID, rules); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(7, uint64(n)))
	total := 0
	for _, c := range cities {
		total += c.weight
	}
	type probe struct {
		id           string
		c            city
		lat, lon     float64
		site, before string // site now and before w.change
		rtt          float64
		state        catchment.State
	}
	ps := make([]probe, n)
	var ids, ccs, conts, cityNames, asNames, versions []string
	var asns []int64
	var lats, lons []float64
	var lastSeen []*time.Time
	for i := range ps {
		k := rng.IntN(total)
		var c city
		for _, c = range cities {
			if k -= c.weight; k < 0 {
				break
			}
		}
		p := probe{id: fmt.Sprintf("p-%05d", i), c: c, lat: c.lat + rng.NormFloat64()*1.2, lon: c.lon + rng.NormFloat64()*1.6, state: catchment.StateSite}
		best := nearest(p.lat, p.lon)
		p.site = best.code
		if rng.Float64() < 0.08 { // routed to a farther site
			p.site = sites[rng.IntN(len(sites))].code
		}
		p.before = p.site
		if c.cc == "GB" || c.cc == "IE" {
			p.before, p.site = "iad", "ams"
			if w.movedGB == "" {
				w.movedGB = p.id
			}
		}
		switch r := rng.Float64(); {
		case r < 0.01:
			p.state = catchment.StateUnreachable
		case r < 0.03:
			p.state = catchment.StateUnidentified
		}
		s := siteByCode(p.site)
		p.rtt = 2 + dist(p.lat, p.lon, s.lat, s.lon)/100*1.1 + rng.Float64()*4
		ps[i] = p
		ids, ccs, conts, cityNames = append(ids, p.id), append(ccs, c.cc), append(conts, c.cont), append(cityNames, c.name)
		asns, asNames = append(asns, c.asn), append(asNames, c.asName)
		lats, lons = append(lats, p.lat), append(lons, p.lon)
		versions = append(versions, []string{"v0.4.1", "v0.4.1", "v0.4.0", "v0.3.2"}[i%4])
		ls := w.now.Add(-time.Duration(rng.IntN(300)) * time.Second)
		switch {
		case i%37 == 5:
			ls = w.now.Add(-3 * time.Hour) // disconnected
		case i%101 == 7:
			ls = w.now.Add(-10 * 24 * time.Hour) // abandoned
		}
		lastSeen = append(lastSeen, &ls)
	}
	_, err = db.Pool().Exec(ctx, `INSERT INTO probes (id, country, continent, city, asn, as_name, declared_lat, declared_lon, version, last_seen, first_seen)
		SELECT *, now() - interval '30 days' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::float8[], $8::float8[], $9::text[], $10::timestamptz[])`,
		ids, ccs, conts, cityNames, asns, asNames, lats, lons, versions, lastSeen)
	if err != nil {
		t.Fatalf("insert probes: %v", err)
	}

	// Rounds every 10 minutes, the last at now-5m; the change falls on the
	// round nearest the middle.
	first := w.now.Add(-5*time.Minute - time.Duration(rounds-1)*10*time.Minute)
	w.change = first.Add(time.Duration(rounds/2) * 10 * time.Minute)
	var rows []store.ResultRow
	flush := func() {
		if _, err := db.IngestBatch(ctx, rows); err != nil {
			t.Fatalf("ingest: %v", err)
		}
		rows = rows[:0]
	}
	for r := 0; r < rounds; r++ {
		ts := first.Add(time.Duration(r) * 10 * time.Minute)
		for i, p := range ps {
			at := ts.Add(time.Duration(i%500) * 100 * time.Millisecond)
			if r == rounds/2 {
				at = ts // one burst: every mover changes at w.change
			}
			s := p.site
			if ts.Before(w.change) {
				s = p.before
			}
			rows = append(rows, identityRow(t, tg.ID, p.id, at, s, p.state, p.rtt*(0.95+rng.Float64()*0.1), w.now))
		}
		if len(rows) > 20000 {
			flush()
		}
	}
	// Ping and a traceroute in the last round, for latency and the probe panel.
	last := first.Add(time.Duration(rounds-1)*10*time.Minute + time.Minute)
	for i, p := range ps {
		if p.state == catchment.StateUnreachable {
			continue
		}
		rows = append(rows, pingRow(t, tg.ID, p.id, last.Add(time.Duration(i%500)*100*time.Millisecond), p.rtt, w.now))
		if i < 50 {
			rows = append(rows, traceRow(t, tg.ID, p.id, last.Add(2*time.Minute), p.rtt, w.now))
		}
	}
	flush()
	if err := db.RollupResults(ctx, first.Add(-time.Hour), w.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	st := pgstore.New(db)
	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(api.Config{Store: st, AnonymousRead: true, AnonymousRatePerMin: 1 << 20}))
	mux.Handle("/", web.Handler())
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	return w
}

func siteByCode(code string) site {
	for _, s := range sites {
		if s.code == code {
			return s
		}
	}
	panic("unknown site " + code)
}

func nearest(lat, lon float64) site {
	best, bd := sites[0], math.Inf(1)
	for _, s := range sites {
		if d := dist(lat, lon, s.lat, s.lon); d < bd {
			best, bd = s, d
		}
	}
	return best
}

// dist is the great-circle distance in km.
func dist(lat1, lon1, lat2, lon2 float64) float64 {
	r := math.Pi / 180
	a := math.Sin((lat2-lat1)*r/2)*math.Sin((lat2-lat1)*r/2) +
		math.Cos(lat1*r)*math.Cos(lat2*r)*math.Sin((lon2-lon1)*r/2)*math.Sin((lon2-lon1)*r/2)
	return 2 * 6371 * math.Asin(math.Sqrt(a))
}

func newResult(probe string, kind measure.Kind, ts time.Time) *measure.Result {
	return &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: probe, Measurement: "k-root/" + string(kind), Target: "k-root",
		Kind: kind, Time: ts, Dst: "198.18.53.53", AF: 4}
}

func identityRow(t testing.TB, target int, probe string, ts time.Time, site string, state catchment.State, rtt float64, now time.Time) store.ResultRow {
	r := newResult(probe, measure.KindIdentity, ts)
	ex := measure.DNSExchange{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp"}
	row := store.ResultRow{TargetID: target, Result: r, State: state}
	ident := ""
	switch state {
	case catchment.StateUnreachable:
		ex.Error = "timeout"
	case catchment.StateUnidentified:
		ident = site + "-new.k-root"
	default:
		ident = fmt.Sprintf("%s%d.k-root", site, 1+int(probe[len(probe)-1])%2)
		row.Site = site
	}
	if ident != "" {
		ex.RTT, ex.Rcode = rtt, "NOERROR"
		row.RTT, row.Identity = &rtt, ident
	}
	r.DNS = &measure.DNSResult{Server: "198.18.53.53:53", Exchanges: []measure.DNSExchange{ex}, Identity: &measure.Identity{HostnameBind: ident}}
	if err := r.Validate(now); err != nil {
		t.Fatalf("seed identity result: %v", err)
	}
	return row
}

func pingRow(t testing.TB, target int, probe string, ts time.Time, rtt float64, now time.Time) store.ResultRow {
	r := newResult(probe, measure.KindPing, ts)
	lo, hi := rtt*0.98, rtt*1.04
	r.Ping = &measure.PingResult{Mode: "raw", Size: 64, Sent: 3, Received: 3, Min: &lo, Avg: &rtt, Median: &rtt, Max: &hi,
		Replies: []measure.PingReply{{Seq: 0, RTT: lo, TTL: 57}, {Seq: 1, RTT: rtt, TTL: 57}, {Seq: 2, RTT: hi, TTL: 57}}}
	if err := r.Validate(now); err != nil {
		t.Fatalf("seed ping result: %v", err)
	}
	loss := 0.0
	return store.ResultRow{TargetID: target, Result: r, RTT: &rtt, Loss: &loss}
}

func traceRow(t testing.TB, target int, probe string, ts time.Time, rtt float64, now time.Time) store.ResultRow {
	r := newResult(probe, measure.KindTrace, ts)
	tr := &measure.TraceResult{Proto: "icmp", Mode: "raw", Paris: true, FirstHop: 1, MaxHops: 30, Reached: true}
	hops := 6
	for i := 1; i <= hops; i++ {
		hp := measure.HopProbe{From: fmt.Sprintf("198.51.100.%d", i), RTT: rtt * float64(i) / float64(hops), ReplyTTL: 64 - i, ICMPType: 11}
		if i == hops {
			hp.From, hp.ICMPType = "198.18.53.53", 0
		}
		if i == 3 {
			hp = measure.HopProbe{Timeout: true}
		}
		tr.Hops = append(tr.Hops, measure.Hop{TTL: i, Probes: []measure.HopProbe{hp}})
	}
	r.Trace = tr
	if err := r.Validate(now); err != nil {
		t.Fatalf("seed trace result: %v", err)
	}
	return store.ResultRow{TargetID: target, Result: r, RTT: &rtt}
}
