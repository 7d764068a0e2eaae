package main

import (
	"fmt"
	"github.com/anycatch/anycatch/catchment/rulesets"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// The renderers turn a successful result into the report a person at a
// terminal expects. They are pure functions of the result so golden files
// pin their output.

// name returns "target (address)" or just the address.
func name(r *measure.Result) string {
	if r.Target == "" || r.Target == r.Dst {
		return r.Dst
	}
	return r.Target + " (" + r.Dst + ")"
}

// rtt formats milliseconds with three decimals, like ping.
func rtt(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) + " ms" }

func percent(num, den int) string {
	if den == 0 {
		return "0%"
	}
	p := 100 * float64(num) / float64(den)
	if p == float64(int(p)) {
		return strconv.Itoa(int(p)) + "%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

func renderPing(w io.Writer, r *measure.Result) {
	p := r.Ping
	if p == nil {
		return
	}
	mode := map[string]string{"raw": "raw socket", "dgram": "unprivileged ICMP socket"}[p.Mode]
	if mode == "" {
		mode = p.Mode
	}
	fmt.Fprintf(w, "PING %s: %d data bytes, %s\n", name(r), p.Size, mode)
	for _, rp := range p.Replies {
		fmt.Fprintf(w, "%d bytes from %s: icmp_seq=%d", p.Size+8, r.Dst, rp.Seq)
		if rp.TTL > 0 {
			fmt.Fprintf(w, " ttl=%d", rp.TTL)
		}
		fmt.Fprintf(w, " time=%s", rtt(rp.RTT))
		if rp.Dup {
			fmt.Fprint(w, " (DUP!)")
		}
		fmt.Fprintln(w)
	}
	label := r.Target
	if label == "" {
		label = r.Dst
	}
	fmt.Fprintf(w, "\n--- %s ping statistics ---\n", label)
	fmt.Fprintf(w, "%d packets transmitted, %d received", p.Sent, p.Received)
	if p.Duplicates > 0 {
		fmt.Fprintf(w, ", +%d duplicates", p.Duplicates)
	}
	fmt.Fprintf(w, ", %s packet loss, time %.0fms\n", percent(p.Sent-p.Received, p.Sent), r.DurationMS)
	if p.Min != nil && p.Avg != nil && p.Median != nil && p.Max != nil {
		fmt.Fprintf(w, "rtt min/avg/median/max = %.3f/%.3f/%.3f/%.3f ms\n", *p.Min, *p.Avg, *p.Median, *p.Max)
	}
}

// unreachable gives traceroute's annotation for an ICMP error that is not
// the expected time-exceeded / echo-reply / port-unreachable-at-destination.
func unreachable(af int, typ, code int) string {
	if af == 4 && typ == 3 {
		return map[int]string{0: "!N", 1: "!H", 2: "!P", 4: "!F", 9: "!X", 10: "!X", 13: "!X"}[code]
	}
	if af == 6 && typ == 1 {
		return map[int]string{0: "!N", 1: "!X", 3: "!H"}[code]
	}
	return ""
}

func renderTrace(w io.Writer, r *measure.Result) {
	t := r.Trace
	if t == nil {
		return
	}
	mode := map[string]string{"raw": "raw socket", "recverr": "unprivileged, IP_RECVERR"}[t.Mode]
	if mode == "" {
		mode = t.Mode
	}
	fmt.Fprintf(w, "traceroute to %s, %d hops max, %s probes (%s", name(r), t.MaxHops, t.Proto, mode)
	if t.Paris {
		fmt.Fprintf(w, ", paris flow id %d", t.FlowID)
	}
	if t.Proto == "udp" && t.DstPort != 0 {
		fmt.Fprintf(w, ", port %d", t.DstPort)
	}
	fmt.Fprintln(w, ")")
	for _, h := range t.Hops {
		fmt.Fprintf(w, "%2d ", h.TTL)
		last := ""
		var labels [][]measure.MPLSLabel
		for _, p := range h.Probes {
			if p.Timeout {
				fmt.Fprint(w, " *")
				continue
			}
			if p.From != last {
				fmt.Fprintf(w, " %s", p.From)
				last = p.From
			}
			fmt.Fprintf(w, "  %s", rtt(p.RTT))
			if a := unreachable(r.AF, p.ICMPType, p.ICMPCode); a != "" {
				fmt.Fprint(w, " "+a)
			}
			if p.Late {
				fmt.Fprint(w, " (late)")
			}
			if len(p.MPLS) > 0 && !sameLabels(labels, p.MPLS) {
				labels = append(labels, p.MPLS)
			}
		}
		fmt.Fprintln(w)
		for _, stack := range labels {
			var parts []string
			for _, l := range stack {
				parts = append(parts, fmt.Sprintf("L=%d TC=%d S=%d TTL=%d", l.Label, l.TC, b2i(l.S), l.TTL))
			}
			fmt.Fprintf(w, "     [MPLS: %s]\n", strings.Join(parts, " / "))
		}
	}
	if t.Reached && len(t.Hops) > 0 {
		n := t.Hops[len(t.Hops)-1].TTL
		fmt.Fprintf(w, "destination reached in %d %s\n", n, plural(n, "hop", "hops"))
	} else {
		fmt.Fprintf(w, "destination not reached\n")
	}
}

func sameLabels(seen [][]measure.MPLSLabel, s []measure.MPLSLabel) bool {
	for _, x := range seen {
		if len(x) == len(s) {
			eq := true
			for i := range x {
				eq = eq && x[i] == s[i]
			}
			if eq {
				return true
			}
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// server returns "addr#port" like dig, from the result's "addr:port".
func server(d *measure.DNSResult, dst string) string {
	host, port := splitServer(d, dst)
	if port == "" {
		return host
	}
	return host + "#" + port
}

func splitServer(d *measure.DNSResult, dst string) (host, port string) {
	if ap, err := netip.ParseAddrPort(d.Server); err == nil {
		return ap.Addr().String(), strconv.Itoa(int(ap.Port()))
	}
	return dst, ""
}

func renderDNS(w io.Writer, r *measure.Result) {
	if r.DNS == nil || len(r.DNS.Exchanges) == 0 {
		return
	}
	e := r.DNS.Exchanges[0]
	fmt.Fprintf(w, "; <<>> anycatch-probe dns <<>> @%s %s %s %s\n", server(r.DNS, r.Dst), e.QName, e.QClass, e.QType)
	if e.TCPFallback {
		fmt.Fprintln(w, ";; Truncated, retrying in TCP mode.")
	}
	if e.Error != "" {
		fmt.Fprintf(w, ";; no answer: %s\n", e.Error)
	} else {
		fmt.Fprintf(w, ";; ->>HEADER<<- status: %s\n", e.Rcode)
		fmt.Fprintf(w, ";; flags: %s; ANSWER: %d\n", strings.Join(e.Flags, " "), len(e.Answers))
		if e.NSID != "" {
			fmt.Fprintf(w, "\n;; OPT PSEUDOSECTION:\n; NSID: %s (\"%s\")\n", spacedHex(e.NSIDHex), e.NSID)
		}
	}
	fmt.Fprintf(w, "\n;; QUESTION SECTION:\n")
	tw := tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
	fmt.Fprintf(tw, ";%s\t\t%s\t%s\n", e.QName, e.QClass, e.QType)
	tw.Flush()
	if len(e.Answers) > 0 {
		fmt.Fprintf(w, "\n;; ANSWER SECTION:\n")
		tw = tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
		for _, a := range e.Answers {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", a.Name, a.TTL, a.Class, a.Type, rdata(a))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if e.Error == "" {
		fmt.Fprintf(w, ";; Query time: %s\n", rtt(e.RTT))
	}
	proto := strings.ToUpper(e.Proto)
	fmt.Fprintf(w, ";; SERVER: %s (%s, %d %s)\n", server(r.DNS, r.Dst), proto, e.Tries, plural(e.Tries, "try", "tries"))
	fmt.Fprintf(w, ";; WHEN: %s\n", r.Time.UTC().Format(time.UnixDate))
	if len(e.Raw) > 0 {
		fmt.Fprintf(w, ";; MSG SIZE  rcvd: %d\n", len(e.Raw))
	}
}

// rdata shows TXT data quoted (the stored form is unquoted, with quotes
// inside already escaped) and everything else as stored.
func rdata(a measure.RR) string {
	if a.Type == "TXT" {
		return `"` + a.Data + `"`
	}
	return a.Data
}

func spacedHex(h string) string {
	var parts []string
	for i := 0; i+2 <= len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, " ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func renderIdentity(w io.Writer, r *measure.Result) {
	renderIdentityWith(w, r, nil)
}

// renderIdentityWith prints the identity, with the site it maps to under
// services' rules first when one of them applies.
func renderIdentityWith(w io.Writer, r *measure.Result, services []rulesets.Service) {
	d := r.DNS
	if d == nil {
		return
	}
	id := d.Identity
	if id == nil {
		id = &measure.Identity{}
	}
	fmt.Fprintf(w, "identity of %s", name(r))
	if _, port := splitServer(d, r.Dst); port != "" && port != "53" {
		fmt.Fprintf(w, " port %s", port)
	}
	fmt.Fprintln(w)
	or := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	nsid := or(id.NSID)
	for _, e := range d.Exchanges {
		if e.NSID != "" && e.NSID == id.NSID && e.NSIDHex != "" {
			nsid += " (hex " + e.NSIDHex + ")"
			break
		}
	}
	if line := siteLine(services, r); line != "" {
		fmt.Fprintf(w, "  site:          %s\n", line)
	}
	fmt.Fprintf(w, "  hostname.bind: %s\n  id.server:     %s\n  NSID:          %s\n", or(id.HostnameBind), or(id.IDServer), nsid)
	if id.Empty() {
		fmt.Fprintln(w, "  (no identity: the server hides it or did not answer)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "QUERY\tPROTO\tTRIES\tRTT\tRESULT\tANSWER")
	for _, e := range d.Exchanges {
		proto := e.Proto
		if e.TCPFallback {
			proto = "udp>tcp"
		}
		result, when, answer := e.Rcode, "-", "-"
		if e.Error != "" {
			result = e.Error
		} else {
			when = rtt(e.RTT)
		}
		for _, a := range e.Answers {
			if a.Type == "TXT" {
				answer = rdata(a)
				break
			}
		}
		fmt.Fprintf(tw, "%s %s %s\t%s\t%d\t%s\t%s\t%s\n", e.QName, e.QClass, e.QType, proto, e.Tries, when, result, answer)
	}
	tw.Flush()
}
