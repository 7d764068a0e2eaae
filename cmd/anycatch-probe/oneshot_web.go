package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/anycatch/anycatch/catchment/rulesets"
	"github.com/anycatch/anycatch/measure"
)

// headerList is a repeatable --header flag.
type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ",") }
func (h *headerList) Set(v string) error { *h = append(*h, strings.ToLower(v)); return nil }

func runHTTPCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newOneshot("http", "[flags] TARGET", `
Send one HTTP(S) request to TARGET (an anycast address or a hostname) with
the Host header and TLS SNI set by --host, and print the status, timings
(connect, TLS, first byte, total), the response headers CDNs name their
site in, the certificate's names and the start of the body, then which site
answered when an identity rule (http_header, http_body) names one. No
redirects are followed and no cookies are kept. Exit 0 means a response
arrived (any status).`, `
  anycatch-probe http --host one.one.one.one --path /cdn-cgi/trace 1.1.1.1
  anycatch-probe http --head --header x-my-pop cdn.example.net
  anycatch-probe http --plain -p 8080 --json 198.51.100.80`)
	var spec measure.HTTPSpec
	var plain, head bool
	var timeout time.Duration
	var headers headerList
	o.fs.StringVar(&spec.Host, "host", "", "Host header and TLS SNI (default: TARGET as given)")
	o.fs.StringVar(&spec.Path, "path", "/", "request path")
	o.fs.BoolVar(&plain, "plain", false, "plain HTTP instead of HTTPS")
	o.fs.BoolVar(&head, "head", false, "send HEAD instead of GET (no body)")
	for _, n := range []string{"p", "port"} {
		o.fs.IntVar(&spec.Port, n, 0, "server port (default 443, or 80 with --plain)")
	}
	o.fs.Var(&headers, "header", "also keep this response header (repeatable)")
	o.fs.IntVar(&spec.BodyBytes, "body-bytes", 2048, "body bytes to keep (-1: none)")
	o.fs.BoolVar(&spec.Insecure, "insecure", false, "accept a certificate that does not verify (its names are printed either way)")
	o.fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long the whole request may take")
	rulesPath := o.fs.String("rules", "", "identity rules file (catchment/rulesets format) to name the site; default: the rules shipped for well-known services")
	pos, code := o.parse(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return o.usageError(stderr, "want exactly one TARGET, got %d arguments", len(pos))
	}
	if timeout <= 0 || spec.Port < 0 || spec.BodyBytes == 0 {
		return o.usageError(stderr, "--timeout must be positive, --port at least 0 and --body-bytes not 0")
	}
	services, err := rulesets.Load(*rulesPath)
	if err != nil {
		return o.usageError(stderr, "--rules: %v", err)
	}
	if plain {
		spec.Scheme = "http"
	}
	if head {
		spec.Method = "HEAD"
	}
	if spec.Host == "" && !isAddr(pos[0]) {
		spec.Host = pos[0]
	}
	spec.Headers = headers
	spec.TimeoutMS = millis(timeout)
	render := func(w io.Writer, r *measure.Result) { renderHTTP(w, r, services) }
	return o.measure(ctx, pos[0], measure.Spec{Kind: measure.KindHTTP, HTTP: &spec}, render,
		func(r *measure.Result) bool { return r.HTTP != nil && r.HTTP.Status != 0 }, stdout, stderr)
}

func runNTPCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newOneshot("ntp", "[flags] SERVER", `
Send one NTPv4 client query to SERVER (an anycast address or a hostname)
and print stratum, reference id, leap, root delay and dispersion, RTT and
clock offset, then which site answered when an ntp_refid rule names one. A
kiss-o'-death reply (RATE, DENY, RSTR) is shown as such and not retried.
Exit 0 means a reply arrived.`, `
  anycatch-probe ntp 198.51.100.123
  anycatch-probe ntp -6 --json ntp.example.net`)
	var spec measure.NTPSpec
	var timeout time.Duration
	for _, n := range []string{"p", "port"} {
		o.fs.IntVar(&spec.Port, n, 123, "server port")
	}
	o.fs.DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for the reply")
	rulesPath := o.fs.String("rules", "", "identity rules file (catchment/rulesets format) to name the site; default: the rules shipped for well-known services")
	pos, code := o.parse(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return o.usageError(stderr, "want exactly one SERVER, got %d arguments", len(pos))
	}
	if timeout <= 0 || spec.Port < 1 {
		return o.usageError(stderr, "--timeout and --port must be positive")
	}
	services, err := rulesets.Load(*rulesPath)
	if err != nil {
		return o.usageError(stderr, "--rules: %v", err)
	}
	spec.TimeoutMS = millis(timeout)
	render := func(w io.Writer, r *measure.Result) { renderNTP(w, r, services) }
	return o.measure(ctx, pos[0], measure.Spec{Kind: measure.KindNTP, NTP: &spec}, render,
		func(r *measure.Result) bool { return r.NTP != nil && r.NTP.Error == "" }, stdout, stderr)
}

// isAddr reports whether TARGET is an address rather than a name (a name
// becomes the Host header and SNI).
func isAddr(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

func renderHTTP(w io.Writer, r *measure.Result, services []rulesets.Service) {
	h := r.HTTP
	if h == nil {
		return
	}
	fmt.Fprintf(w, "http of %s\n", name(r))
	if line := siteLine(services, r); line != "" {
		fmt.Fprintf(w, "  site:        %s\n", line)
	}
	fmt.Fprintf(w, "  url:         %s\n", h.URL)
	if h.Status != 0 {
		fmt.Fprintf(w, "  response:    %s %d\n", h.Proto, h.Status)
	}
	if h.Error != "" {
		fmt.Fprintf(w, "  error:       %s\n", h.Error)
	}
	var t []string
	for _, x := range []struct {
		name string
		v    float64
	}{{"connect", h.ConnectMS}, {"tls", h.TLSMS}, {"first byte", h.FirstByteMS}, {"total", h.TotalMS}} {
		if x.v != 0 {
			t = append(t, x.name+" "+rtt(x.v))
		}
	}
	if len(t) > 0 {
		fmt.Fprintf(w, "  timings:     %s\n", strings.Join(t, ", "))
	}
	if c := h.TLS; c != nil {
		fmt.Fprintf(w, "  tls:         %s, subject %q\n", c.Version, c.Subject)
		if len(c.SANs) > 0 {
			fmt.Fprintf(w, "  cert names:  %s\n", strings.Join(c.SANs, ", "))
		}
	}
	for _, x := range h.Headers {
		fmt.Fprintf(w, "  %s: %s\n", x.Name, x.Value)
	}
	if h.Body != "" {
		more := ""
		if h.BodyTruncated {
			more = " (cut)"
		}
		fmt.Fprintf(w, "  body%s:\n", more)
		for _, l := range strings.Split(strings.TrimRight(h.Body, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

func renderNTP(w io.Writer, r *measure.Result, services []rulesets.Service) {
	n := r.NTP
	if n == nil {
		return
	}
	fmt.Fprintf(w, "ntp of %s (%s)\n", name(r), n.Server)
	if n.Error != "" {
		fmt.Fprintf(w, "  error:       %s\n", n.Error)
		return
	}
	if line := siteLine(services, r); line != "" {
		fmt.Fprintf(w, "  site:        %s\n", line)
	}
	if n.Kiss != "" {
		fmt.Fprintf(w, "  kiss-o'-death %s: the server asks us to stop (not retried)\n", n.Kiss)
		return
	}
	fmt.Fprintf(w, "  stratum %d, refid %s, version %d, leap %d\n", n.Stratum, n.RefID, n.Version, n.Leap)
	fmt.Fprintf(w, "  rtt %s, offset %s, root delay %s, root dispersion %s\n", rtt(n.RTT), rtt(n.OffsetMS), rtt(n.RootDelayMS), rtt(n.RootDispMS))
}

// renderDNSWith is renderDNS followed by the site the answer names, when
// a rule names one (Google Public DNS: the egress address in the TXT
// answer to o-o.myaddr.l.google.com); nothing is added otherwise.
func renderDNSWith(w io.Writer, r *measure.Result, services []rulesets.Service) {
	renderDNS(w, r)
	if r.DNS == nil || !r.DNS.Identity.Empty() {
		return
	}
	for _, s := range servicesFor(services, r.Dst) {
		if m := s.Identifier().IdentifyResult(r); m.Site != "" {
			fmt.Fprintf(w, ";; SITE: %s   (%s, from %s %q)\n", m.Site, s.Name, m.Source, m.Identity)
			return
		}
	}
}
