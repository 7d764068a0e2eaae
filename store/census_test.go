package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestCensusFlow(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := &Target{Name: "svc", Addr4: "198.18.53.53", Addr6: "2001:db8:53::53", IntervalSec: 60}
	if err := db.CreateTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ams", "fra"} {
		if err := db.PutSite(ctx, tg.ID, Site{Code: s}); err != nil {
			t.Fatal(err)
		}
	}
	tok := sha256.Sum256([]byte("acs_secret"))
	// Opt-in first: no tokens and no rounds for a target that has not.
	if err := db.IssueSiteToken(ctx, tg.ID, "ams", tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token without opt-in: got %v, want ErrInvalid", err)
	}
	if c, err := db.CensusConfig(ctx, tg.ID); err != nil || c.Enabled || c.MaxPPS != DefaultCensusMaxPPS {
		t.Fatalf("default config %+v, %v", c, err)
	}
	if err := db.SetCensusConfig(ctx, CensusConfig{TargetID: tg.ID, Enabled: true, MaxPPS: 500}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetCensusConfig(ctx, CensusConfig{TargetID: tg.ID, Enabled: true, MaxPPS: 20000}); !errors.Is(err, ErrInvalid) {
		t.Errorf("ceiling above the hard limit: got %v", err)
	}
	if err := db.IssueSiteToken(ctx, tg.ID, "nowhere", tok); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown site: got %v", err)
	}
	if err := db.IssueSiteToken(ctx, tg.ID, "ams", tok); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	e := SiteEnrollment{TokenHash: tok, ProbeID: "p-site1", PublicKey: make([]byte, 32), Version: "t", Now: now}
	if err := db.EnrollSite(ctx, e); err != nil {
		t.Fatal(err)
	}
	// The agent's credential carries its role (the origin).
	if k, err := db.ProbeKey(ctx, "p-site1"); err != nil || k.Origin != "site" || k.Disabled {
		t.Errorf("site agent key: %+v, %v", k, err)
	}
	e.ProbeID = "p-site2"
	if err := db.EnrollSite(ctx, e); !errors.Is(err, ErrTokenUnusable) {
		t.Errorf("token reused: got %v", err)
	}
	a, err := db.CensusAgent(ctx, "p-site1")
	if err != nil || a.Site != "ams" || a.Target != "svc" || a.Addr4 != "198.18.53.53" || !a.Enabled || a.MaxPPS != 500 {
		t.Fatalf("agent %+v, %v", a, err)
	}
	if ps, err := db.ListProbes(ctx, ProbeFilter{Limit: 100}); err != nil || len(ps) != 0 {
		t.Errorf("probe list shows the site agent: %+v %v", ps, err)
	}
	if _, err := db.CensusAgent(ctx, "p-nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown agent: %v", err)
	}

	r := &CensusRound{TargetID: tg.ID, Sender: "fra", Hitlist: "lab", RatePPS: 100, Prefix4: 24, Prefix6: 48,
		Secret: []byte("0123456789abcdef"), Start: now, Closes: now.Add(time.Minute), LateUntil: now.Add(time.Hour)}
	if err := db.CreateCensusRound(ctx, r); !errors.Is(err, ErrInvalid) {
		t.Errorf("sender without an agent: got %v", err)
	}
	r.Sender, r.RatePPS = "ams", 501
	if err := db.CreateCensusRound(ctx, r); !errors.Is(err, ErrInvalid) {
		t.Errorf("rate above the ceiling: got %v", err)
	}
	r.RatePPS = 500
	if err := db.CreateCensusRound(ctx, r); err != nil || r.ID == 0 {
		t.Fatalf("create round: %v", err)
	}
	live, err := db.LiveCensusRounds(ctx, tg.ID, now.Add(2*time.Minute))
	if err != nil || len(live) != 1 || live[0].ID != r.ID || string(live[0].Secret) != "0123456789abcdef" {
		t.Fatalf("live rounds %+v, %v", live, err)
	}
	if live, _ := db.LiveCensusRounds(ctx, tg.ID, now.Add(2*time.Hour)); len(live) != 0 {
		t.Errorf("round live after its late window: %+v", live)
	}

	rtt := 12.5
	rows := []CensusReply{
		{Round: r.ID, Addr: netip.MustParseAddr("198.18.128.2"), Site: "ams", Prefix: netip.MustParsePrefix("198.18.128.0/24"),
			RTTMS: &rtt, Sent: now, Received: now.Add(time.Millisecond), Country: "NL"},
		{Round: r.ID, Addr: netip.MustParseAddr("2001:db8:c1::2"), Site: "fra", Prefix: netip.MustParsePrefix("2001:db8:c1::/48"),
			Sent: now, Received: now.Add(2 * time.Minute), Late: true},
	}
	ins, err := db.IngestCensusReplies(ctx, rows)
	if err != nil || !ins[0] || !ins[1] {
		t.Fatalf("ingest: %v %v", ins, err)
	}
	ins, err = db.IngestCensusReplies(ctx, rows[:1])
	if err != nil || ins[0] {
		t.Fatalf("re-ingest: %v %v (want not inserted)", ins, err)
	}
	// Copies within one batch: the first counts.
	twice := []CensusReply{rows[0], rows[0]}
	twice[0].Addr = netip.MustParseAddr("198.18.128.3")
	twice[1].Addr = twice[0].Addr
	if ins, err := db.IngestCensusReplies(ctx, twice); err != nil || !ins[0] || ins[1] {
		t.Fatalf("copies in a batch: %v %v", ins, err)
	}
	// A reply of a round that does not exist: nothing is stored.
	bad := rows[0]
	bad.Round = r.ID + 1000
	if _, err := db.IngestCensusReplies(ctx, []CensusReply{bad}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown round: got %v, want ErrNotFound", err)
	}
	got, err := db.CensusReplies(ctx, r.ID)
	if err != nil || len(got) != 3 {
		t.Fatalf("replies %+v, %v", got, err)
	}
	got = append(got[:1], got[2:]...) // drop 198.18.128.3
	if got[0].Site != "ams" || got[0].RTTMS == nil || *got[0].RTTMS != 12.5 || got[0].Country != "NL" || got[0].Late {
		t.Errorf("reply 0: %+v", got[0])
	}
	if got[1].Site != "fra" || !got[1].Late || got[1].RTTMS != nil {
		t.Errorf("reply 1: %+v", got[1])
	}
	counts, tot, err := db.CensusSummary(ctx, r.ID)
	if err != nil || tot != (CensusTotals{Prefixes: 2, MultiSite: 0, Late: 1}) || len(counts) != 6 || counts[0].Prefixes == 0 {
		t.Fatalf("summary %+v %+v %v", counts, tot, err)
	}
	list, err := db.ListCensusRounds(ctx, tg.ID, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	// A new token for the site disables the agent enrolled with the old one.
	if err := db.IssueSiteToken(ctx, tg.ID, "ams", sha256.Sum256([]byte("acs_other"))); err != nil {
		t.Fatal(err)
	}
	if k, err := db.ProbeKey(ctx, "p-site1"); err != nil || !k.Disabled {
		t.Errorf("old agent: %+v, %v", k, err)
	}
	if _, err := db.CensusAgent(ctx, "p-site1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old agent still bound: %v", err)
	}
}
