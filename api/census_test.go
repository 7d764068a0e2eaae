package api_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/store"
)

func TestCensusAPI(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.seed()
	ctx := context.Background()
	// Without a census store the endpoints say so.
	if r := e.do("GET", "/api/v1/targets/k-root/census", e.read, ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("no census store: %d %s", r.status, r.body)
	}
	e = newEnvCensus(t)
	e.seed()

	if r := e.do("POST", "/api/v1/targets/k-root/census/sites/ams/token", e.admin, ""); r.status != http.StatusBadRequest {
		t.Errorf("token before opt-in: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/api/v1/targets/k-root/census", e.read, `{"enabled":true}`); r.status != http.StatusForbidden {
		t.Errorf("opt-in with a read key: %d", r.status)
	}
	if r := e.do("PUT", "/api/v1/targets/k-root/census", e.admin, `{"enabled":true,"max_pps":20000}`); r.status != http.StatusBadRequest {
		t.Errorf("ceiling above the hard limit: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/api/v1/targets/k-root/census", e.admin, `{"enabled":true,"max_pps":500}`); r.status != http.StatusOK ||
		!strings.Contains(string(r.body), `"max_pps":500`) {
		t.Fatalf("opt-in: %d %s", r.status, r.body)
	}
	var tok struct{ Site, Token string }
	r := e.do("POST", "/api/v1/targets/k-root/census/sites/ams/token", e.admin, "")
	r.decode(t, &tok)
	if r.status != http.StatusCreated || !strings.HasPrefix(tok.Token, "acs_") {
		t.Fatalf("site token: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/targets/k-root/census/sites/nowhere/token", e.admin, ""); r.status != http.StatusNotFound {
		t.Errorf("token for an unknown site: %d %s", r.status, r.body)
	}
	// A round needs an enrolled sender.
	if r := e.do("POST", "/api/v1/targets/k-root/census/rounds", e.admin, `{"sender":"ams","hitlist":"lab"}`); r.status != http.StatusBadRequest {
		t.Errorf("round without an agent: %d %s", r.status, r.body)
	}
	if err := e.db.EnrollSite(ctx, store.SiteEnrollment{TokenHash: sha(tok.Token), ProbeID: "p-ams", PublicKey: make([]byte, 32), Now: e.now}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"sender":"ams","hitlist":"../etc/passwd"}`, `{"sender":"ams","hitlist":"lab","rate_pps":501}`,
		`{"sender":"ams","hitlist":"lab","duration":"1ms"}`, `{"sender":"ams","hitlist":"lab","prefix4":33}`} {
		if r := e.do("POST", "/api/v1/targets/k-root/census/rounds", e.admin, bad); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, r.status, r.body)
		}
	}
	var rounds [2]api.CensusRound
	for i := range rounds {
		r := e.do("POST", "/api/v1/targets/k-root/census/rounds", e.admin, `{"sender":"ams","hitlist":"lab","rate_pps":50,"duration":"1m"}`)
		r.decode(t, &rounds[i])
		if r.status != http.StatusCreated || rounds[i].RatePPS != 50 || strings.Contains(string(r.body), "secret") {
			t.Fatalf("round: %d %s", r.status, r.body)
		}
	}
	rtt := 7.5
	lat, lon := 52.0, 5.0
	asn := int64(1136)
	add := func(round int64, addr, site string, late bool, rtt *float64) {
		a := netip.MustParseAddr(addr)
		p, _ := a.Prefix(24)
		if a.Is6() {
			p, _ = a.Prefix(48)
		}
		if _, err := e.db.IngestCensusReplies(ctx, []store.CensusReply{{Round: round, Addr: a, Site: site, Prefix: p, RTTMS: rtt,
			Sent: e.now, Received: e.now, Late: late, ASN: &asn, Country: "NL", Lat: &lat, Lon: &lon}}); err != nil {
			t.Fatal(err)
		}
	}
	add(rounds[0].ID, "198.18.128.2", "ams", false, &rtt)
	add(rounds[0].ID, "198.18.129.2", "ams", false, nil)
	add(rounds[1].ID, "198.18.128.2", "ams", false, &rtt)
	add(rounds[1].ID, "198.18.129.2", "fra", true, nil)
	add(rounds[1].ID, "2001:db8:c1::2", "fra", false, nil)

	var rep api.CensusReport
	r = e.do("GET", "/api/v1/targets/k-root/census?prefixes=true", e.read, "")
	r.decode(t, &rep)
	if r.status != 200 || rep.Round.ID != rounds[1].ID || rep.Previous == nil || *rep.Previous != rounds[0].ID {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	if rep.Summary.Prefixes != 3 || rep.Summary.Late != 1 || len(rep.Summary.Sites) != 2 || rep.Summary.Sites[0].Site != "fra" ||
		rep.Summary.Sites[0].Prefixes != 2 || rep.Summary.Sites[0].ByASN[0].Key != "AS1136" {
		t.Errorf("summary %+v", rep.Summary)
	}
	if len(rep.Changes) != 2 || rep.Changes[0].Prefix.String() != "198.18.129.0/24" || rep.Changes[0].From != "ams" || rep.Changes[0].To != "fra" ||
		rep.Changes[1].From != "" || rep.Changes[1].To != "fra" {
		t.Errorf("changes %+v", rep.Changes)
	}
	if len(rep.Prefixes) != 3 || rep.Prefixes[0].Site != "ams" || rep.Prefixes[0].RTTMS == nil || rep.Changed != 2 {
		t.Errorf("prefixes %+v, changed %d", rep.Prefixes, rep.Changed)
	}
	// The database's aggregation is census.Summarize's and census.Diff's.
	rowsOf := func(round int64) []census.Row {
		reps, err := e.db.CensusReplies(ctx, round)
		if err != nil {
			t.Fatal(err)
		}
		var rows []census.Row
		for _, x := range reps {
			row := census.Row{Prefix: x.Prefix, Site: x.Site, Country: x.Country, Late: x.Late}
			if x.ASN != nil {
				row.ASN = *x.ASN
			}
			rows = append(rows, row)
		}
		return rows
	}
	if got, want := fmt.Sprint(rep.Summary), fmt.Sprint(census.Summarize(rowsOf(rounds[1].ID))); got != want {
		t.Errorf("summary from SQL %s\nfrom census.Summarize %s", got, want)
	}
	if got, want := fmt.Sprint(rep.Changes), fmt.Sprint(census.Diff(rowsOf(rounds[0].ID), rowsOf(rounds[1].ID))); got != want {
		t.Errorf("changes from SQL %s\nfrom census.Diff %s", got, want)
	}
	r = e.do("GET", "/api/v1/targets/k-root/census?changes_limit=1", e.read, "")
	r.decode(t, &rep)
	if len(rep.Changes) != 1 || rep.Changed != 2 {
		t.Errorf("changes_limit=1: %d changes of %d", len(rep.Changes), rep.Changed)
	}
	r = e.do("GET", "/api/v1/targets/k-root/census?round="+itoa(rounds[0].ID)+"&format=csv", e.read, "")
	if lines := strings.Split(strings.TrimSpace(string(r.body)), "\n"); r.status != 200 || len(lines) != 3 ||
		lines[0] != "prefix,addr,site,asn,country,rtt_ms,late,received" || !strings.HasPrefix(lines[1], "198.18.128.0/24,198.18.128.2,ams,1136,NL,7.500,false,") {
		t.Errorf("csv: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/api/v1/targets/k-root/census?format=geojson", e.read, "")
	if r.status != 200 || !strings.Contains(string(r.body), `"coordinates":[5,52]`) || !strings.Contains(string(r.body), `"site":"fra","country":"NL","prefixes":2`) {
		t.Errorf("geojson: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/api/v1/targets/k-root/census?round=999999", e.read, ""); r.status != 404 {
		t.Errorf("unknown round: %d", r.status)
	}
	var list struct{ Data []api.CensusRound }
	r = e.do("GET", "/api/v1/targets/k-root/census/rounds", e.read, "")
	r.decode(t, &list)
	if len(list.Data) != 2 || list.Data[0].ID != rounds[1].ID {
		t.Errorf("rounds %s", r.body)
	}
}

func sha(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func newEnvCensus(t *testing.T) *env {
	t.Helper()
	var e *env
	e = newEnv(t, api.Config{})
	// Rebuild the server with the census store over the same database.
	e.srv.Config.Handler = api.New(api.Config{Store: pgstore.New(e.db), Census: pgstore.New(e.db), Now: func() time.Time { return e.now }})
	return e
}
