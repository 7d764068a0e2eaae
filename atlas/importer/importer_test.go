package importer_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/anycatch/anycatch/internal/fixtures"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/miekg/dns"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/atlas"
	"github.com/anycatch/anycatch/atlas/importer"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixtureDir returns the shared RIPE Atlas fixtures or skips the test.
func fixtureDir(t testing.TB) string { return fixtures.AtlasDir(t) }

func openDB(t testing.TB) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, pgtest.NewURL(t), store.Options{MaxConns: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// parsed reads a file with the atlas reader: its results and bad records.
func parsed(t testing.TB, path string) (results []atlas.Item, bad []atlas.Item) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := atlas.NewReader(f)
	for {
		it, err := r.Next()
		if err == io.EOF {
			return results, bad
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if it.Err != nil {
			bad = append(bad, it)
		} else {
			results = append(results, it)
		}
	}
}

// fixtureImport says how each fixture file is imported: into a target of
// its own, so per-file counts can be checked in the database.
var fixtureImports = map[string]importer.TargetOptions{
	"dns-mixed.ndjson":                  {Name: "k-root", Create: true, RulesFile: importer.BuiltinRules, Service: "k-root"},
	"ping-mixed.ndjson":                 {Name: "atlas-ping", Create: true, Addrs: []string{"193.0.14.129"}},
	"traceroute-mixed.ndjson":           {Name: "atlas-trace", Create: true, Addrs: []string{"193.0.14.129"}},
	"msm-29083406-chaos-id-server.json": {Name: "quad9-149", Create: true, RulesFile: importer.BuiltinRules, Service: "quad9", Addrs: []string{"149.112.149.112"}},
	"msm-24980204-txt-id-server.json":   {Name: "quad9", Create: true, RulesFile: importer.BuiltinRules},
}

type imported struct {
	path   string
	target *store.Target
	stats  importer.Stats
}

// importFixtures imports every fixture file into db and returns what
// happened per file name.
func importFixtures(t *testing.T, db *store.DB, locate func(netip.Addr) geo.Info) map[string]imported {
	t.Helper()
	ctx := context.Background()
	dir := fixtureDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*json"))
	if len(files) != len(fixtureImports) {
		t.Fatalf("got %d fixture files, want %d: update fixtureImports", len(files), len(fixtureImports))
	}
	out := map[string]imported{}
	for _, path := range files {
		name := filepath.Base(path)
		to, ok := fixtureImports[name]
		if !ok {
			t.Fatalf("no import plan for %s", name)
		}
		prep, err := importer.PrepareTarget(ctx, db, to)
		if err != nil {
			t.Fatalf("%s: prepare: %v", name, err)
		}
		var errs bytes.Buffer
		st, err := importer.ImportFile(ctx, importer.Options{Store: db, Target: *prep.Target, Identifier: prep.Identifier,
			Locate: locate, Errors: &errs, BatchSize: 7}, path) // small batches: many transactions
		if err != nil {
			t.Fatalf("%s: import: %v", name, err)
		}
		t.Logf("%s", st.Summary())
		if errs.Len() > 0 {
			t.Errorf("%s: bad records reported:\n%s", name, errs.String())
		}
		out[name] = imported{path: path, target: prep.Target, stats: st}
	}
	return out
}

func count(t *testing.T, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// stored returns the stored results of a target by id.
func stored(t *testing.T, db *store.DB, targetID int) map[measure.UUID]*measure.Result {
	t.Helper()
	out := map[measure.UUID]*measure.Result{}
	err := db.StreamResults(context.Background(), store.ResultQuery{TargetID: targetID}, func(r *measure.Result) error {
		out[r.ID] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportFixtures(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	files := importFixtures(t, db, nil)

	for name, im := range files {
		t.Run(name, func(t *testing.T) {
			results, bad := parsed(t, im.path)
			st := im.stats
			// Every record is stored or reported; the fixtures have no bad ones.
			if st.Results != len(results) || st.Bad != len(bad) || len(bad) != 0 {
				t.Errorf("stats: %d results, %d bad; parsed %d results, %d bad", st.Results, st.Bad, len(results), len(bad))
			}
			ids := map[measure.UUID]bool{}
			for _, it := range results {
				ids[it.Result.ID] = true
			}
			if st.New != len(ids) || st.New+st.Duplicate != st.Results {
				t.Errorf("stats: %d new, %d duplicate; want %d new (distinct ids) of %d", st.New, st.Duplicate, len(ids), st.Results)
			}
			if n := count(t, db, `SELECT count(*) FROM results WHERE target_id = $1`, im.target.ID); n != len(ids) {
				t.Errorf("stored %d results, want %d", n, len(ids))
			}
			if n := count(t, db, `SELECT count(*) FROM results WHERE target_id = $1 AND (probe_id NOT LIKE 'atlas:%' OR msm NOT LIKE 'atlas:%')`, im.target.ID); n != 0 {
				t.Errorf("%d results outside the atlas namespace", n)
			}

			// Read back: every stored result equals the parsed one (RTTs,
			// hops, identities, errors, raw replies), apart from the target
			// name the import sets and PostgreSQL's microsecond clock.
			got := stored(t, db, im.target.ID)
			var errored, timeouts, gotErrored, gotTimeouts int
			first := map[measure.UUID]bool{}
			for _, it := range results {
				// A later record with the same Atlas key (msm_id, prb_id,
				// timestamp) is a duplicate: the first one is stored.
				if first[it.Result.ID] {
					continue
				}
				first[it.Result.ID] = true
				want := *it.Result
				want.Target = im.target.Name
				want.Time = want.Time.Truncate(time.Microsecond).UTC()
				g := got[want.ID]
				if g == nil {
					t.Errorf("%s: result %s not stored", it.Where(), want.ID)
					continue
				}
				g.Time = g.Time.UTC()
				wj, _ := json.Marshal(&want)
				gj, _ := json.Marshal(g)
				if !bytes.Equal(wj, gj) {
					t.Errorf("%s: read back differs:\n got %s\nwant %s", it.Where(), gj, wj)
				}
				if want.Error != "" {
					errored++
				}
				if g.Error != "" {
					gotErrored++
				}
				timeouts += countTimeouts(&want)
				gotTimeouts += countTimeouts(g)
			}
			if errored != gotErrored || timeouts != gotTimeouts {
				t.Errorf("errors/timeouts: stored %d/%d, parsed %d/%d", gotErrored, gotTimeouts, errored, timeouts)
			}
			if n := count(t, db, `SELECT count(*) FROM results WHERE target_id = $1 AND error IS NOT NULL`, im.target.ID); n != errored {
				t.Errorf("error column set on %d rows, want %d", n, errored)
			}
			t.Logf("%d results, %d with an error, %d timeouts", len(results), errored, timeouts)

			// Probes: one external row per Atlas probe, address from "from".
			froms := map[string]string{}
			latest := map[string]time.Time{}
			for _, it := range results {
				if !it.Result.Time.Before(latest[it.Result.Probe]) {
					latest[it.Result.Probe] = it.Result.Time
					if it.Meta.From != "" {
						froms[it.Result.Probe] = it.Meta.From
					}
				}
			}
			for probe, from := range froms {
				var origin, src string
				var last time.Time
				if err := db.Pool().QueryRow(ctx, `SELECT origin, coalesce(host(src_addr), ''), last_seen FROM probes WHERE id = $1`, probe).
					Scan(&origin, &src, &last); err != nil {
					t.Errorf("probe %s: %v", probe, err)
					continue
				}
				if origin != "atlas" || (src != from && name != "dns-mixed.ndjson") || last.Before(latest[probe].Truncate(time.Microsecond)) {
					t.Errorf("probe %s: origin %s, src %s (from %s), last_seen %s (latest result %s)", probe, origin, src, from, last, latest[probe])
				}
			}
		})
	}

	// Sampled values, checked against the raw files by hand.
	var ident []struct {
		HB, NSID string
	}
	rows, err := db.Pool().Query(ctx, `SELECT coalesce(payload->'dns'->'identity'->>'hostname_bind', ''), coalesce(payload->'dns'->'identity'->>'nsid', '')
		FROM results WHERE target_id = $1 AND payload->'dns'->'identity' IS NOT NULL`, files["dns-mixed.ndjson"].target.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var hb, nsid string
		if err := rows.Scan(&hb, &nsid); err != nil {
			t.Fatal(err)
		}
		ident = append(ident, struct{ HB, NSID string }{hb, nsid})
	}
	rows.Close()
	var sawHB, sawNSID bool
	for _, i := range ident {
		sawHB = sawHB || i.HB == "ns1.fi-hel.k.ripe.net"
		sawNSID = sawNSID || i.NSID == "k3.ams-ix.k.ripe.net"
	}
	if !sawHB || !sawNSID {
		t.Errorf("stored identities %v: want hostname.bind ns1.fi-hel.k.ripe.net and NSID k3.ams-ix.k.ripe.net", ident)
	}
	// Those two are K-root sites under the built-in rules.
	if n := count(t, db, `SELECT count(*) FROM results WHERE target_id = $1 AND site IN ('fi-hel', 'ams-ix')`, files["dns-mixed.ndjson"].target.ID); n < 2 {
		t.Errorf("%d dns-mixed results identified as fi-hel/ams-ix, want at least 2", n)
	}
	// Ping: the rtt_ms column is the median of unique replies.
	if n := count(t, db, `SELECT count(*) FROM results WHERE target_id = $1 AND kind = 'ping' AND rtt_ms IS NOT NULL
		AND abs(rtt_ms - (payload->'ping'->>'median')::real) > 0.001`, files["ping-mixed.ndjson"].target.ID); n != 0 {
		t.Errorf("%d ping rows whose rtt_ms is not the median", n)
	}
	// Trace: hop lists survive, including timeouts.
	if n := count(t, db, `SELECT count(*) FROM results WHERE target_id = $1 AND CASE WHEN json_typeof(payload->'trace'->'hops') = 'array'
		THEN json_array_length(payload->'trace'->'hops') > 0 ELSE false END`,
		files["traceroute-mixed.ndjson"].target.ID); n == 0 {
		t.Error("no stored traceroute has hops")
	}

	// Re-import: nothing new, catchment state and changes untouched.
	before := count(t, db, `SELECT count(*) FROM results`)
	changes := count(t, db, `SELECT count(*) FROM catchment_changes`)
	latest := count(t, db, `SELECT count(*) FROM catchment_latest`)
	probes := count(t, db, `SELECT count(*) FROM probes`)
	again := importFixtures(t, db, nil)
	for name, im := range again {
		if im.stats.New != 0 || im.stats.Duplicate != im.stats.Results || im.stats.NewProbes != 0 {
			t.Errorf("%s re-imported: %d new, %d duplicate of %d, %d new probes", name, im.stats.New, im.stats.Duplicate, im.stats.Results, im.stats.NewProbes)
		}
		if im.target.ID != files[name].target.ID {
			t.Errorf("%s: re-import used target %d, first import %d", name, im.target.ID, files[name].target.ID)
		}
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM results`:           before,
		`SELECT count(*) FROM catchment_changes`: changes,
		`SELECT count(*) FROM catchment_latest`:  latest,
		`SELECT count(*) FROM probes`:            probes,
	} {
		if n := count(t, db, q); n != want {
			t.Errorf("after re-import %s = %d, want %d", q, n, want)
		}
	}

	// Partitions were created on demand for every day of data (2012–2021).
	parts, err := db.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(DISTINCT date_trunc('day', ts)) FROM results`); len(parts) < n || n < 5 {
		t.Errorf("%d partitions for %d days of results", len(parts), n)
	}
	t.Logf("%d results over %d day partitions", before, len(parts))
}

func countTimeouts(r *measure.Result) int {
	n := 0
	if r.DNS != nil {
		for _, e := range r.DNS.Exchanges {
			if e.Error == "timeout" {
				n++
			}
		}
	}
	if r.Ping != nil {
		n += r.Ping.Sent - r.Ping.Received
	}
	if r.Trace != nil {
		for _, h := range r.Trace.Hops {
			for _, p := range h.Probes {
				if p.Timeout {
					n++
				}
			}
		}
	}
	return n
}

// expected29083406 computes the per-site probe counts of measurement
// 29083406 from the raw file, without the atlas package: decode each abuf
// with miekg/dns and take the 3-letter label of "resNNN.<site>.rrdns.pch.net".
func expected29083406(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw []struct {
		PrbID     int             `json:"prb_id"`
		Timestamp int64           `json:"timestamp"`
		Error     json.RawMessage `json:"error"`
		Result    struct {
			Abuf string `json:"abuf"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^res[0-9]+\.([a-z]{3})\.rrdns\.pch\.net$`)
	type obs struct {
		ts   int64
		site string
	}
	latest := map[int]obs{} // per probe: the latest result wins
	for _, r := range raw {
		site := "(unreachable)"
		if r.Error == nil {
			site = "(unidentified)"
			b, err := base64.StdEncoding.DecodeString(r.Result.Abuf)
			if err != nil {
				t.Fatalf("probe %d: abuf: %v", r.PrbID, err)
			}
			var m dns.Msg
			if err := m.Unpack(b); err != nil {
				t.Fatalf("probe %d: unpack: %v", r.PrbID, err)
			}
			for _, rr := range m.Answer {
				if txt, ok := rr.(*dns.TXT); ok && len(txt.Txt) > 0 {
					if s := re.FindStringSubmatch(strings.Join(txt.Txt, "")); s != nil {
						site = s[1]
					}
					break
				}
			}
		}
		if o, ok := latest[r.PrbID]; !ok || r.Timestamp >= o.ts {
			latest[r.PrbID] = obs{r.Timestamp, site}
		}
	}
	want := map[string]int{}
	for _, o := range latest {
		want[o.site]++
	}
	return want
}

func TestCatchment29083406(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	path := filepath.Join(fixtureDir(t), "msm-29083406-chaos-id-server.json")
	want := expected29083406(t, path)
	if want["vie"] == 0 {
		t.Fatalf("expected counts %v have no vie", want)
	}

	prep, err := importer.PrepareTarget(ctx, db, importer.TargetOptions{Name: "quad9", Create: true,
		RulesFile: importer.BuiltinRules, Addrs: []string{"149.112.149.112"}})
	if err != nil {
		t.Fatal(err)
	}
	// The rules were stored for the new target.
	if rules, _ := db.ListRules(ctx, prep.Target.ID); len(rules) == 0 {
		t.Error("rules from the rules file were not stored for the new target")
	}
	st, err := importer.ImportFile(ctx, importer.Options{Store: db, Target: *prep.Target, Identifier: prep.Identifier}, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(st.Summary())

	got := map[string]int{}
	rows, err := db.Pool().Query(ctx, `SELECT state, coalesce(site, '') FROM catchment_latest WHERE target_id = $1`, prep.Target.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var state, site string
		if err := rows.Scan(&state, &site); err != nil {
			t.Fatal(err)
		}
		if state != "site" {
			site = "(" + state + ")"
		}
		got[site]++
	}
	rows.Close()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("catchment_latest per-site probes:\n got %v\nwant %v", got, want)
	}
	t.Logf("catchment of 29083406: %v", got)

	// The same counts through the catchment API, served over the same
	// database.
	var maxTS time.Time
	if err := db.Pool().QueryRow(ctx, `SELECT max(observed_at) FROM catchment_latest WHERE target_id = $1`, prep.Target.ID).Scan(&maxTS); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range want {
		total += n
	}
	// Current view (catchment_latest), as a server would have served it
	// right after the last result.
	now := maxTS.Add(30 * time.Second)
	cur := apiCatchment(t, db, func() time.Time { return now }, "")
	if !reflect.DeepEqual(cur.sites, want) || cur.probes != total {
		t.Errorf("API catchment (current) per-site probes (%d):\n got %v\nwant %v (%d)", cur.probes, cur.sites, want, total)
	}
	// Historical view (catchment_changes + the hourly rollup the import
	// rebuilt), asked today for that time: the same sites, and the same
	// unreachable probes. Probes that never answered have no change event
	// (catchment.Advance emits none for a first unreachable observation);
	// they used to be missing from this view (2 of 96 here).
	hist := apiCatchment(t, db, time.Now, "&at="+maxTS.Add(time.Second).UTC().Format(time.RFC3339))
	if !reflect.DeepEqual(hist.sites, want) || hist.probes != total {
		t.Errorf("API catchment (historical) per-site probes (%d):\n got %v\nwant %v (%d)", hist.probes, hist.sites, want, total)
	}
}

type apiReport struct {
	probes int
	sites  map[string]int // site code, or "(unidentified)", "(unreachable)"
}

// apiCatchment serves the API over db with the clock now and returns the
// total of GET /targets/quad9/catchment?window=720h<extra>.
func apiCatchment(t *testing.T, db *store.DB, now func() time.Time, extra string) apiReport {
	t.Helper()
	srv := httptest.NewServer(api.New(api.Config{Store: pgstore.New(db), AnonymousRead: true, AnonymousRatePerMin: 1000, Now: now}))
	defer srv.Close()
	url := srv.URL + "/api/v1/targets/quad9/catchment?window=720h" + extra
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	var rep struct {
		Total struct {
			Probes       int `json:"probes"`
			Unidentified int `json:"unidentified"`
			Unreachable  int `json:"unreachable"`
			Sites        []struct {
				Site   string `json:"site"`
				Probes int    `json:"probes"`
			} `json:"sites"`
		} `json:"total"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	out := apiReport{probes: rep.Total.Probes, sites: map[string]int{}}
	for _, s := range rep.Total.Sites {
		out.sites[s.Site] = s.Probes
	}
	if rep.Total.Unidentified > 0 {
		out.sites["(unidentified)"] = rep.Total.Unidentified
	}
	if rep.Total.Unreachable > 0 {
		out.sites["(unreachable)"] = rep.Total.Unreachable
	}
	return out
}

// withBrokenLines returns the fixture dns-mixed.ndjson with broken records
// at known lines, and those line numbers.
func withBrokenLines(t *testing.T) ([]byte, []int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir(t), "dns-mixed.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	broken := map[int]string{
		3:  `{"fw": 4790, "type": "dns", "prb_id": 12`,              // truncated JSON
		10: `{"type": "dns", "msm_id": 1, "timestamp": 1400000000}`, // no prb_id
		20: `{"type": "http", "prb_id": 1, "msm_id": 2, "timestamp": 1400000000, "dst_addr": "198.51.100.1"}`,
		31: `not json at all`,
	}
	var out []string
	var want []int
	for i := 0; len(lines) > 0; i++ {
		n := len(out) + 1
		if b, ok := broken[n]; ok {
			out = append(out, b)
			want = append(want, n)
			continue
		}
		out = append(out, lines[0])
		lines = lines[1:]
	}
	return []byte(strings.Join(out, "\n") + "\n"), want
}

func TestImportReportsBrokenLines(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	data, wantBad := withBrokenLines(t)
	good, _ := parsed(t, filepath.Join(fixtureDir(t), "dns-mixed.ndjson"))

	prep, err := importer.PrepareTarget(ctx, db, importer.TargetOptions{Name: "k-root", Create: true, RulesFile: importer.BuiltinRules})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plain := filepath.Join(dir, "broken.ndjson")
	if err := os.WriteFile(plain, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var errs bytes.Buffer
	opts := importer.Options{Store: db, Target: *prep.Target, Identifier: prep.Identifier, Errors: &errs, BatchSize: 5}
	st, err := importer.ImportFile(ctx, opts, plain)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	t.Logf("%s\nstderr:\n%s", st.Summary(), errs.String())
	var gotBad []int
	for _, b := range st.BadShown {
		gotBad = append(gotBad, b.Line)
	}
	if !reflect.DeepEqual(gotBad, wantBad) || st.Bad != len(wantBad) {
		t.Errorf("bad lines %v (%d), want %v", gotBad, st.Bad, wantBad)
	}
	for _, n := range wantBad {
		if !strings.Contains(errs.String(), fmt.Sprintf("broken.ndjson: line %d: ", n)) {
			t.Errorf("stderr does not report line %d:\n%s", n, errs.String())
		}
		if !strings.Contains(st.Summary(), fmt.Sprintf("line %d", n)) {
			t.Errorf("summary does not list line %d: %s", n, st.Summary())
		}
	}
	distinct := map[measure.UUID]bool{}
	for _, it := range good {
		distinct[it.Result.ID] = true
	}
	if st.Results != len(good) || st.New != len(distinct) || st.Duplicate != len(good)-len(distinct) {
		t.Errorf("%d results, %d new, %d duplicate; want the %d good ones (%d distinct)", st.Results, st.New, st.Duplicate, len(good), len(distinct))
	}
	if n := count(t, db, `SELECT count(*) FROM results WHERE target_id = $1`, prep.Target.ID); n != len(distinct) {
		t.Errorf("stored %d, want %d", n, len(distinct))
	}

	// The same file gzipped, from a reader: recognised, all duplicates.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	errs.Reset()
	st, err = importer.Import(ctx, opts, "broken.ndjson.gz", bytes.NewReader(gz.Bytes()), int64(gz.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if st.New != 0 || st.Duplicate != len(good) || st.RolledUp != 0 || st.Bad != len(wantBad) || st.Bytes != int64(gz.Len()) {
		t.Errorf("gzip re-import: %s (bytes %d of %d)", st.Summary(), st.Bytes, gz.Len())
	}

	// Strict: the first bad record stops the import with its line number,
	// before its batch is stored.
	db2 := openDB(t)
	prep2, err := importer.PrepareTarget(ctx, db2, importer.TargetOptions{Name: "k-root", Create: true, RulesFile: importer.BuiltinRules})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Target, opts.Strict = db2, *prep2.Target, true
	st, err = importer.ImportFile(ctx, opts, plain)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("strict import: err = %v, want one naming line 3", err)
	}
	if n := count(t, db2, `SELECT count(*) FROM results`); n != 0 {
		t.Errorf("strict import stored %d results before line 3 failed its batch, want 0", n)
	}

	// A file that is not results at all yields nothing and says why.
	st, err = importer.Import(ctx, opts, "junk", strings.NewReader("hello\n"), 6)
	if err != nil && !opts.Strict {
		t.Fatal(err)
	}
	if st.Results != 0 || st.Fatal == nil {
		t.Errorf("junk: %s", st.Summary())
	}
	// A missing file is unreadable.
	if _, err := importer.ImportFile(ctx, opts, filepath.Join(dir, "missing.json")); !errors.Is(err, importer.ErrUnreadable) {
		t.Errorf("missing file: err = %v, want ErrUnreadable", err)
	}
}

// TestImportLocatesProbes: probes get the GeoIP fields of their "from"
// address.
func TestImportLocatesProbes(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	path := filepath.Join(fixtureDir(t), "msm-29083406-chaos-id-server.json")
	// 85.207.251.19 is probe 1000058's "from" address in the fixture.
	city := writeMMDB(t, "GeoLite2-City", map[string]mmdbtype.Map{"85.207.0.0/16": {
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU")},
		"country":   mmdbtype.Map{"iso_code": mmdbtype.String("CZ")},
		"city":      mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Prague")}},
		"location":  mmdbtype.Map{"latitude": mmdbtype.Float64(50.08), "longitude": mmdbtype.Float64(14.42)},
	}})
	asn := writeMMDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{"85.207.0.0/16": {
		"autonomous_system_number":       mmdbtype.Uint32(64500),
		"autonomous_system_organization": mmdbtype.String("Example CZ"),
	}})
	res, err := geo.Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	prep, err := importer.PrepareTarget(ctx, db, importer.TargetOptions{Name: "quad9", Create: true, RulesFile: importer.BuiltinRules})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := importer.ImportFile(ctx, importer.Options{Store: db, Target: *prep.Target, Identifier: prep.Identifier, Locate: res.Lookup}, path); err != nil {
		t.Fatal(err)
	}
	p, err := db.GetProbe(ctx, "atlas:1000058")
	if err != nil {
		t.Fatal(err)
	}
	if p.Origin != "atlas" || p.Country != "CZ" || p.City != "Prague" || p.ASN == nil || *p.ASN != 64500 || p.Lat == nil || *p.Lat != 50.08 {
		t.Errorf("probe atlas:1000058 = %+v", p)
	}
	if p.LastSeen == nil || !p.LastSeen.Equal(time.Unix(1612968359, 0)) {
		t.Errorf("last_seen %v, want the result time 1612968359", p.LastSeen)
	}
	// A probe outside the test database is stored without location.
	if n := count(t, db, `SELECT count(*) FROM probes WHERE origin = 'atlas' AND country IS NULL`); n == 0 {
		t.Error("every probe has a country; the test database covers one /16")
	}
}

func writeMMDB(t testing.TB, dbType string, recs map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range recs {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
