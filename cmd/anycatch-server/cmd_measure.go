package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/internal/cliflag"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// cmdMeasure is a small API client: it starts an on-demand measurement on
// a running server and prints each probe's outcome as it arrives.
//
//	anycatch-server measure --target lab --from country=BR --limit 5 identity,ping
func cmdMeasure(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api", measureEnvOr("ANYCATCH_API", "http://127.0.0.1:8080"), "server base URL (env ANYCATCH_API)")
	key := fs.String("key", os.Getenv("ANYCATCH_API_KEY"), "API key (env ANYCATCH_API_KEY)")
	target := fs.String("target", "", "registered target to measure (this or --address)")
	address := fs.String("address", "", "instead of --target: an IP address or hostname to measure (admin key)")
	var from []string
	fs.Func("from", "probe selection, repeatable: country=CC, continent=EU, asn=N, site=CODE, probe=ID or any", func(s string) error {
		from = append(from, s)
		return nil
	})
	limit := fs.Int("limit", 10, "most probes to ask")
	af := fs.Int("af", 0, "address family: 4, 6 or 0 for both")
	timeout := fs.Duration("timeout", 30*time.Second, "how long probes have to answer")
	asJSON := fs.Bool("json", false, "print each event as a JSON line")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: anycatch-server measure --target NAME|--address ADDR [--from KEY=VALUE]... [--limit N] [KINDS]")
		fmt.Fprintln(stderr, "\nStarts an on-demand measurement on a running server (POST /api/v1/measurements) and")
		fmt.Fprintln(stderr, "prints each probe's result as it arrives. KINDS: comma-separated identity, ping, trace,")
		fmt.Fprintln(stderr, "dns (default: all the target measures; ping for --address).\n\nflags:")
		fs.PrintDefaults()
	}
	// Flags may follow the kinds argument.
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("measure: unexpected argument %q", pos[1])
	}
	var kindsArg string
	if len(pos) == 1 {
		kindsArg = pos[0]
	}
	if (*target == "") == (*address == "") {
		return errors.New("measure: give --target or --address")
	}
	in := map[string]any{"limit": *limit, "af": *af, "timeout_sec": int(timeout.Seconds())}
	if *target != "" {
		in["target"] = *target
	} else {
		in["address"] = *address
	}
	if kindsArg != "" {
		in["kinds"] = strings.Split(kindsArg, ",")
	}
	sel := map[string]any{}
	for _, f := range from {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "country", "continent", "site":
			sel[k] = v
		case "asn":
			n, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(v), "AS"), 10, 64)
			if err != nil {
				return fmt.Errorf("measure: --from asn=%s: want a number", v)
			}
			sel["asn"] = n
		case "probe":
			ps, _ := sel["probes"].([]string)
			sel["probes"] = append(ps, v)
		case "any":
			sel["any"] = true
		default:
			return fmt.Errorf("measure: --from %q: want country=, continent=, asn=, site=, probe= or any", f)
		}
	}
	in["from"] = sel
	body, _ := json.Marshal(in)
	base := strings.TrimSuffix(*apiURL, "/")
	hc := &http.Client{}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/measurements", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("measure: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+*key)
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("measure: start: %w", err)
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("measure: start: server answered %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	var st measure.OnDemandStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("measure: start: decode answer: %w", err)
	}
	fmt.Fprintf(stderr, "measurement %s: %s on %d probes (%s)\n", st.ID, strings.Join(st.Measurements, ", "), len(st.Probes), strings.Join(st.Probes, " "))

	sctx, cancel := context.WithTimeout(ctx, *timeout+30*time.Second)
	defer cancel()
	req, err = http.NewRequestWithContext(sctx, http.MethodGet, base+"/api/v1/measurements/"+st.ID, nil)
	if err != nil {
		return fmt.Errorf("measure: %w", err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+*key)
	res, err = hc.Do(req)
	if err != nil {
		return fmt.Errorf("measure: stream: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return fmt.Errorf("measure: stream: server answered %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		if *asJSON {
			fmt.Fprintln(stdout, sc.Text())
		}
		var ev measure.OnDemandEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("measure: stream: decode event: %w", err)
		}
		counts[ev.Outcome]++
		if !*asJSON {
			fmt.Fprintln(stdout, formatEvent(ev, st.Created))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("measure: stream: %w", err)
	}
	fmt.Fprintf(stderr, "done: %d results, %d refused, %d offline, %d timed out\n",
		counts[measure.OutcomeResult], counts[measure.OutcomeRefused], counts[measure.OutcomeOffline], counts[measure.OutcomeTimeout])
	return nil
}

// formatEvent renders one outcome as a table-like line: when it arrived
// (since the request), probe, measurement, outcome and a summary.
func formatEvent(ev measure.OnDemandEvent, start time.Time) string {
	detail := ev.Reason
	if r := ev.Result; r != nil {
		switch {
		case r.Error != "":
			detail = "error: " + r.Error
		case r.DNS != nil && r.DNS.Identity != nil:
			id := r.DNS.Identity
			detail = "identity " + strings.Join(measureNonEmpty(id.HostnameBind, id.IDServer, id.NSID), " / ")
			if id.Empty() {
				detail = "no identity in the answer"
			}
		}
		if rtt, ok := r.RTT(); ok {
			detail += fmt.Sprintf(" rtt %.1f ms", rtt)
		}
		if r.Trace != nil {
			detail += fmt.Sprintf(" %d hops reached=%t", len(r.Trace.Hops), r.Trace.Reached)
		}
	}
	return fmt.Sprintf("+%6.2fs  %-36s %-22s %-8s %s", ev.At.Sub(start).Seconds(), ev.Probe, ev.Measurement, ev.Outcome, strings.TrimSpace(detail))
}

func measureNonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func measureEnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
