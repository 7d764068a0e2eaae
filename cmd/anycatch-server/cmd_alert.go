package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anycatch/anycatch/alert"
	"github.com/anycatch/anycatch/alert/pgstore"
	"github.com/anycatch/anycatch/alert/service"
	"github.com/anycatch/anycatch/alert/webhook"
)

// cmdAlert manages alert rules and webhooks straight on the database, as
// the API's /alerts endpoints do:
//
//	anycatch-server alert rule-create TARGET --kind site_lost [--af 4] [--threshold X] [--window 5m] [--for 0] [--resolve 1m] [--min-probes 2]
//	                                  [--flap-changes 3] [--region country|continent|asn]
//	anycatch-server alert rules [--target T] | alert rule-delete ID | rule-disable ID (mute; resolves its alerts) | rule-enable ID
//	anycatch-server alert list [--target T] [--status firing]
//	anycatch-server alert webhook-create --url URL [--name N] [--target T] [--allow-private] [--max-attempts 5]   prints the secret once
//	anycatch-server alert webhooks | webhook-delete ID | webhook-disable ID | webhook-enable ID | webhook-test ID | deliveries ID
func cmdAlert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	actions := []string{"rule-create", "rules", "rule-delete", "rule-enable", "rule-disable", "list",
		"webhook-create", "webhooks", "webhook-delete", "webhook-enable", "webhook-disable", "webhook-test", "deliveries"}
	c, err := newAdminCmd("alert", args, stderr, stdout, actions...)
	if err != nil {
		return err
	}
	var r alert.Rule
	var window, forD, resolve time.Duration
	rc := c.flags("rule-create")
	rc.StringVar((*string)(&r.Kind), "kind", "", "rule kind: "+kindList())
	c.flags("rule-create", "webhook-create").StringVar(&r.Name, "name", "", "rule or webhook name")
	rc.IntVar(&r.AF, "af", 0, "address family 4 or 6; 0 evaluates both")
	rc.Float64Var(&r.Threshold, "threshold", 0, "percentage points (share kinds), probes (burst, flap, region_flap, inflation) or (probe, site) pairs (speed_of_light)")
	rc.Float64Var(&r.Clear, "clear", 0, "hysteresis: clear at or below this; 0 means 0.75 x threshold")
	rc.DurationVar(&window, "window", 0, "look-back window; 0 means 5m")
	rc.DurationVar(&forD, "for", 0, "how long the condition must hold before firing")
	rc.DurationVar(&resolve, "resolve", 0, "how long it must stay clear before resolving; 0 means 1m, negative at once")
	rc.IntVar(&r.MinProbes, "min-probes", 0, "fewest probes an alert may be about; 0 means 2")
	rc.IntVar(&r.FlapChanges, "flap-changes", 0, "flap, region_flap: changes within the window that make a probe flapping; 0 means 3")
	rc.StringVar(&r.Region, "region", "", "region_flap: country, continent or asn")
	var w alert.Webhook
	wc := c.flags("webhook-create")
	wc.StringVar(&w.URL, "url", "", "webhook URL")
	wc.StringVar(&w.Secret, "secret", "", "HMAC secret, at least 16 characters; empty generates one")
	wc.BoolVar(&w.AllowPrivate, "allow-private", false, "let this webhook reach loopback/private addresses")
	wc.IntVar(&w.MaxAttempts, "max-attempts", 0, "delivery attempts; 0 means 5")
	target := c.flags("rules", "list", "webhook-create").String("target", "", "only this target (rules, list); the webhook's target (webhook-create)")
	status := c.flags("list").String("status", "", "firing or resolved")
	want := map[string]int{"rule-create": 1, "rule-delete": 1, "rule-enable": 1, "rule-disable": 1,
		"webhook-delete": 1, "webhook-enable": 1, "webhook-disable": 1, "webhook-test": 1, "deliveries": 1}[c.action]
	db, err := c.open(ctx, args[1:], want)
	if err != nil {
		return err
	}
	defer db.close()
	svc := service.New(service.Config{Store: pgstore.Store{DB: db.DB}, Log: slog.New(slog.DiscardHandler), Webhook: webhook.Options{}})
	id := func() (int64, error) {
		n, err := strconv.ParseInt(c.arg(0), 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("alert %s: %q is not an id", c.action, c.arg(0))
		}
		return n, nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch c.action {
	case "rule-create":
		r.Target, r.Enabled = c.arg(0), true
		r.WindowSec, r.ForSec, r.ResolveSec = int(window.Seconds()), int(forD.Seconds()), int(resolve.Seconds())
		if resolve < 0 {
			r.ResolveSec = -1
		}
		out, err := svc.CreateRule(ctx, r)
		if err != nil {
			return fmt.Errorf("alert rule-create: %w", err)
		}
		fmt.Fprintf(stdout, "created alert rule %d (%s on %s)\n", out.ID, out.Kind, out.Target)
	case "rules":
		rules, err := svc.Rules(ctx, *target)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tTARGET\tNAME\tKIND\tAF\tTHRESHOLD\tCLEAR\tWINDOW\tFOR\tRESOLVE\tMIN PROBES\tENABLED")
		for _, r := range rules {
			kind := string(r.Kind)
			if r.Region != "" {
				kind += "(" + r.Region + ")"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%g\t%g\t%ds\t%ds\t%ds\t%d\t%t\n", r.ID, r.Target, r.Name, kind, r.AF, r.Threshold, r.Clear,
				r.WindowSec, r.ForSec, r.ResolveSec, r.MinProbes, r.Enabled)
		}
	case "rule-delete":
		n, err := id()
		if err != nil {
			return err
		}
		if err := svc.DeleteRule(ctx, n); err != nil {
			return fmt.Errorf("alert rule-delete %d: %w", n, err)
		}
	case "rule-enable", "rule-disable", "webhook-enable", "webhook-disable":
		n, err := id()
		if err != nil {
			return err
		}
		set := svc.SetRuleEnabled
		if strings.HasPrefix(c.action, "webhook") {
			set = svc.SetWebhookEnabled
		}
		if err := set(ctx, n, strings.HasSuffix(c.action, "-enable")); err != nil {
			return fmt.Errorf("alert %s %d: %w", c.action, n, err)
		}
	case "list":
		if *status != "" && *status != "firing" && *status != "resolved" {
			return fmt.Errorf("alert list: --status %q: want firing or resolved", *status)
		}
		as, err := svc.Alerts(ctx, alert.AlertQuery{Target: *target, Status: alert.Status(*status)})
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tTARGET\tRULE\tKIND\tAF\tSUBJECT\tSTATUS\tSTARTED\tRESOLVED\tSUMMARY")
		for _, a := range as {
			res := "-"
			if a.ResolvedAt != nil {
				res = a.ResolvedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Target, a.RuleName, a.Kind, a.AF, a.Subject, a.Status,
				a.StartedAt.UTC().Format(time.RFC3339), res, a.Summary)
		}
	case "webhook-create":
		w.Name, w.Target, w.Enabled = r.Name, *target, true
		out, err := svc.CreateWebhook(ctx, w)
		if err != nil {
			return fmt.Errorf("alert webhook-create: %w", err)
		}
		fmt.Fprintln(stdout, out.Secret)
		fmt.Fprintf(stderr, "created webhook %d; the secret above (its HMAC key) is shown only once\n", out.ID)
	case "webhooks":
		ws, err := svc.Webhooks(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tNAME\tURL\tTARGET\tALLOW PRIVATE\tMAX ATTEMPTS\tENABLED")
		for _, w := range ws {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%t\t%d\t%t\n", w.ID, w.Name, w.URL, w.Target, w.AllowPrivate, w.MaxAttempts, w.Enabled)
		}
	case "webhook-delete":
		n, err := id()
		if err != nil {
			return err
		}
		if err := svc.DeleteWebhook(ctx, n); err != nil {
			return fmt.Errorf("alert webhook-delete %d: %w", n, err)
		}
	case "webhook-test", "deliveries":
		n, err := id()
		if err != nil {
			return err
		}
		var ds []alert.Delivery
		if c.action == "webhook-test" {
			d, err := svc.TestWebhook(ctx, n)
			if err != nil {
				return fmt.Errorf("alert webhook-test %d: %w", n, err)
			}
			ds = []alert.Delivery{d}
		} else if ds, err = svc.Deliveries(ctx, n, 50); err != nil {
			return fmt.Errorf("alert deliveries %d: %w", n, err)
		}
		fmt.Fprintln(tw, "ID\tEVENT\tALERT\tSTATE\tATTEMPTS\tSTATUS\tUPDATED\tLAST ERROR")
		for _, d := range ds {
			a := "-"
			if d.AlertID != nil {
				a = strconv.FormatInt(*d.AlertID, 10)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", d.ID, d.Event, a, d.State, d.Attempts, d.LastStatus,
				d.UpdatedAt.UTC().Format(time.RFC3339), d.LastError)
		}
	}
	return nil
}

func kindList() string {
	var ks []string
	for _, k := range alert.Kinds {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}
