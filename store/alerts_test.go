package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAlertTables(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tg := &Target{Name: "lab", Addr4: "198.18.53.53"}
	if err := db.CreateTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	r := &AlertRuleRow{Target: "lab", Enabled: true, Definition: []byte(`{"kind":"site_lost"}`)}
	if err := db.CreateAlertRule(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAlertRule(ctx, &AlertRuleRow{Target: "nope", Definition: []byte(`{}`)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("rule for a missing target: %v, want ErrNotFound", err)
	}
	rules, err := db.ListAlertRules(ctx, "")
	if err != nil || len(rules) != 1 || rules[0].TargetID != tg.ID || rules[0].Target != "lab" || string(rules[0].Definition) != `{"kind": "site_lost"}` {
		t.Fatalf("rules %+v, %v", rules, err)
	}

	// Catchment counts from catchment_latest.
	now := time.Now().UTC().Truncate(time.Second)
	for i, row := range []struct {
		probe, state, site string
		rtt                any
	}{{"p1", "site", "ams", 10.0}, {"p2", "site", "ams", 20.0}, {"p3", "site", "nrt", 30.0}, {"p4", "unreachable", "ams", nil}, {"p5", "unidentified", "", 5.0}} {
		if _, err := db.pool.Exec(ctx, `INSERT INTO catchment_latest (target_id, probe_id, af, state, site, rtt_ms, observed_at, since, result_id)
			VALUES ($1, $2, 4, $3, nullif($4, ''), $5, $6, $6, gen_random_uuid())`, tg.ID, row.probe, row.state, row.site, row.rtt, now.Add(-time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	counts, err := db.CatchmentCounts(ctx, tg.ID, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range counts {
		got[c.State+"/"+c.Site] = c.Probes
		if c.State == "site" && c.Site == "ams" && (c.MedianRTT == nil || *c.MedianRTT != 15) {
			t.Errorf("ams median %v, want 15", c.MedianRTT)
		}
	}
	if len(got) != 4 || got["site/ams"] != 2 || got["site/nrt"] != 1 || got["unreachable/"] != 1 || got["unidentified/"] != 1 {
		t.Errorf("counts %v", got)
	}

	// One firing alert per (rule, af, subject); resolving closes it.
	a := &AlertRow{RuleID: r.ID, TargetID: tg.ID, AF: 4, Subject: "ams", StartedAt: now, Body: []byte(`{}`)}
	if err := db.OpenAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := &AlertRow{RuleID: r.ID, TargetID: tg.ID, AF: 4, Subject: "ams", StartedAt: now, Body: []byte(`{}`)}
	if err := db.OpenAlert(ctx, b); !errors.Is(err, ErrConflict) || b.ID != a.ID {
		t.Errorf("second open: %v, id %d; want ErrConflict with id %d", err, b.ID, a.ID)
	}
	firing, err := db.ListAlerts(ctx, AlertQuery{Status: "firing"})
	if err != nil || len(firing) != 1 || firing[0].Target != "lab" {
		t.Fatalf("firing %+v, %v", firing, err)
	}
	if err := db.ResolveAlert(ctx, a.ID, now.Add(time.Minute), []byte(`{"status":"resolved"}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.ResolveAlert(ctx, a.ID, now, []byte(`{}`)); !errors.Is(err, ErrNotFound) {
		t.Errorf("second resolve: %v, want ErrNotFound", err)
	}
	all, _ := db.ListAlerts(ctx, AlertQuery{Target: "lab"})
	if len(all) != 1 || all[0].Status != "resolved" || all[0].ResolvedAt == nil {
		t.Errorf("alerts %+v", all)
	}

	// Webhooks and the delivery log.
	w := &WebhookRow{Name: "ops", URL: "https://hooks.example.net/x", Secret: "k", MaxAttempts: 3, Enabled: true}
	if err := db.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	w2 := &WebhookRow{URL: "https://hooks.example.net/y", Secret: "k", Target: "lab", MaxAttempts: 3, Enabled: true}
	if err := db.CreateWebhook(ctx, w2); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateWebhook(ctx, &WebhookRow{URL: "u", Target: "nope", MaxAttempts: 1}); err == nil {
		t.Error("webhook for a missing target was created")
	}
	ws, err := db.ListWebhooks(ctx)
	if err != nil || len(ws) != 2 || ws[0].Target != "" || ws[1].Target != "lab" {
		t.Fatalf("webhooks %+v, %v", ws, err)
	}
	d := &DeliveryRow{WebhookID: w.ID, AlertID: &a.ID, Event: "firing"}
	if err := db.CreateDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	st := 500
	d.State, d.Attempts, d.LastStatus, d.LastError = "failed", 3, &st, "gave up after 3 attempts"
	if err := db.UpdateDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	ds, err := db.ListDeliveries(ctx, w.ID, 0)
	if err != nil || len(ds) != 1 || ds[0].State != "failed" || ds[0].Attempts != 3 || *ds[0].LastStatus != 500 || ds[0].LastError == "" {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	if err := db.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetWebhook(ctx, w.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted webhook: %v", err)
	}
	// Muting a rule resolves its firing alerts.
	c := &AlertRow{RuleID: r.ID, TargetID: tg.ID, AF: 6, Subject: "nrt", StartedAt: now, Body: []byte(`{"summary":"x"}`)}
	if err := db.OpenAlert(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAlertRuleEnabled(ctx, r.ID, false); err != nil {
		t.Fatal(err)
	}
	if firing, _ := db.ListAlerts(ctx, AlertQuery{Status: "firing"}); len(firing) != 0 {
		t.Errorf("firing after muting the rule: %+v", firing)
	}
	if rs, _ := db.ListAlertRules(ctx, "lab"); len(rs) != 1 || rs[0].Enabled {
		t.Errorf("rules after muting %+v", rs)
	}
	if err := db.SetAlertRuleEnabled(ctx, 999, true); !errors.Is(err, ErrNotFound) {
		t.Errorf("muting a missing rule: %v", err)
	}
	if err := db.DeleteAlertRule(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if all, _ := db.ListAlerts(ctx, AlertQuery{}); len(all) != 0 {
		t.Errorf("alerts of a deleted rule remain: %+v", all)
	}
}
