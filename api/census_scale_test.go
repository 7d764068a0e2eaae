package api_test

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/anycatch/anycatch/store"
)

// TestCensusReportScale times the census report of a large round. It
// seeds ANYCATCH_CENSUS_SCALE replies (skipped when unset), e.g.
//
//	ANYCATCH_CENSUS_SCALE=200000 go test -count=1 -v -run TestCensusReportScale ./api
func TestCensusReportScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ANYCATCH_CENSUS_SCALE"))
	if n <= 0 {
		t.Skip("set ANYCATCH_CENSUS_SCALE to the number of replies to seed")
	}
	e := newEnvCensus(t)
	e.seed()
	ctx := context.Background()
	if err := e.db.SetCensusConfig(ctx, store.CensusConfig{TargetID: e.target.ID, Enabled: true, MaxPPS: 100}); err != nil {
		t.Fatal(err)
	}
	tok := sha256.Sum256([]byte("acs_scale"))
	if err := e.db.IssueSiteToken(ctx, e.target.ID, "ams", tok); err != nil {
		t.Fatal(err)
	}
	if err := e.db.EnrollSite(ctx, store.SiteEnrollment{TokenHash: tok, ProbeID: "p-scale", PublicKey: make([]byte, 32), Now: e.now}); err != nil {
		t.Fatal(err)
	}
	var rounds []int64
	for range 2 {
		r := &store.CensusRound{TargetID: e.target.ID, Sender: "ams", Hitlist: "x", RatePPS: 100, Prefix4: 24, Prefix6: 48,
			Secret: make([]byte, 16), Start: e.now, Closes: e.now.Add(time.Hour), LateUntil: e.now.Add(2 * time.Hour)}
		if err := e.db.CreateCensusRound(ctx, r); err != nil {
			t.Fatal(err)
		}
		rounds = append(rounds, r.ID)
	}
	start := time.Now()
	for ri, id := range rounds {
		var rows []store.CensusReply
		for i := range n {
			a := netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 1})
			p, _ := a.Prefix(24)
			site := []string{"ams", "fra"}[(i+ri*(i%7/6))%2] // about 1 in 7 moves between the rounds
			asn := int64(64500 + i%50)
			rows = append(rows, store.CensusReply{Round: id, Addr: a, Site: site, Prefix: p, Sent: e.now, Received: e.now,
				ASN: &asn, Country: []string{"NL", "DE", "US", "BR"}[i%4]})
			if len(rows) == 5000 || i == n-1 {
				if _, err := e.db.IngestCensusReplies(ctx, rows); err != nil {
					t.Fatal(err)
				}
				rows = rows[:0]
			}
		}
	}
	t.Logf("seeded 2 rounds of %d replies in %s", n, time.Since(start).Round(time.Millisecond))
	for _, q := range []string{"", "?format=csv", "?prefixes=true"} {
		start := time.Now()
		r := e.do("GET", "/api/v1/targets/k-root/census"+q, e.read, "")
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body[:min(len(r.body), 200)])
		}
		t.Logf("GET census%s: %s, %d bytes", q, time.Since(start).Round(time.Millisecond), len(r.body))
	}
}
