package store

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestUpsertExternalProbes(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	t0 := time.Date(2021, 2, 10, 12, 0, 0, 0, time.UTC)
	de := ProbeGeo{ASN: 3320, ASName: "DTAG", Prefix: netip.MustParsePrefix("80.128.0.0/11"), Country: "DE", Continent: "EU",
		City: "Berlin", Lat: fp(52.5), Lon: fp(13.4)}

	created, err := db.UpsertExternalProbes(ctx, []ExternalProbe{
		{ID: "atlas:1", Src: netip.MustParseAddr("80.130.1.2"), Geo: de, FirstSeen: t0, LastSeen: t0.Add(time.Hour)},
		{ID: "atlas:2", FirstSeen: t0, LastSeen: t0},
	})
	if err != nil {
		t.Fatalf("UpsertExternalProbes: %v", err)
	}
	if created != 2 {
		t.Errorf("created = %d, want 2", created)
	}
	p, err := db.GetProbe(ctx, "atlas:1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Origin != "atlas" || p.Country != "DE" || p.ASN == nil || *p.ASN != 3320 || p.City != "Berlin" ||
		p.Lat == nil || *p.Lat != 52.5 || p.LastSeen == nil || !p.LastSeen.Equal(t0.Add(time.Hour)) || !p.FirstSeen.Equal(t0) {
		t.Errorf("atlas:1 = %+v", p)
	}

	// An older batch (e.g. an older file imported later) widens first_seen
	// but does not move the address or location back.
	created, err = db.UpsertExternalProbes(ctx, []ExternalProbe{
		{ID: "atlas:1", Src: netip.MustParseAddr("198.51.100.9"), Geo: ProbeGeo{Country: "FR"}, FirstSeen: t0.Add(-48 * time.Hour), LastSeen: t0.Add(-47 * time.Hour)},
	})
	if err != nil || created != 0 {
		t.Fatalf("older upsert: created %d, err %v", created, err)
	}
	var src string
	if err := db.pool.QueryRow(ctx, `SELECT host(src_addr) FROM probes WHERE id = 'atlas:1'`).Scan(&src); err != nil {
		t.Fatal(err)
	}
	p, _ = db.GetProbe(ctx, "atlas:1")
	if src != "80.130.1.2" || p.Country != "DE" || !p.FirstSeen.Equal(t0.Add(-48*time.Hour)) || !p.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("after older batch: src %s, %+v", src, p)
	}

	// A newer batch moves the address; a lookup that knew nothing keeps the
	// stored location.
	if _, err := db.UpsertExternalProbes(ctx, []ExternalProbe{
		{ID: "atlas:1", Src: netip.MustParseAddr("2001:db8::1"), FirstSeen: t0.Add(24 * time.Hour), LastSeen: t0.Add(25 * time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT host(src_addr) FROM probes WHERE id = 'atlas:1'`).Scan(&src); err != nil {
		t.Fatal(err)
	}
	p, _ = db.GetProbe(ctx, "atlas:1")
	if src != "2001:db8::1" || p.Country != "DE" || !p.LastSeen.Equal(t0.Add(25*time.Hour)) {
		t.Errorf("after newer batch: src %s, %+v", src, p)
	}
}

func TestUpsertExternalProbesNeverTouchesEnrolled(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	_, err := db.UpsertExternalProbes(ctx, []ExternalProbe{{ID: "p-abc", FirstSeen: now, LastSeen: now}})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("own probe id: err = %v, want ErrInvalid", err)
	}
	_, err = db.UpsertExternalProbes(ctx, []ExternalProbe{{ID: "atlas:", FirstSeen: now, LastSeen: now}})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("empty atlas id: err = %v, want ErrInvalid", err)
	}
	// A row in the external namespace that is not external (only a broken
	// database has one) is refused, not overwritten.
	if _, err := db.pool.Exec(ctx, `INSERT INTO probes (id, origin, version) VALUES ('atlas:7', 'anycatch', 'ours')`); err != nil {
		t.Fatal(err)
	}
	_, err = db.UpsertExternalProbes(ctx, []ExternalProbe{{ID: "atlas:7", Geo: ProbeGeo{Country: "NL"}, FirstSeen: now, LastSeen: now}})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("err = %v, want ErrConflict", err)
	}
	p, err := db.GetProbe(ctx, "atlas:7")
	if err != nil {
		t.Fatal(err)
	}
	if p.Origin != "anycatch" || p.Version != "ours" || p.Country != "" || p.LastSeen != nil {
		t.Errorf("enrolled probe changed: %+v", p)
	}
}
