package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/catchment/rulesets"
	"github.com/anycatch/anycatch/internal/cliflag"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe"
	"github.com/anycatch/anycatch/probe/dns"
)

// oneshot is what every one-shot subcommand shares: its flag set, address
// family and output flags, and its help text.
type oneshot struct {
	name     string
	synopsis string // after "anycatch-probe NAME "
	about    string
	examples string
	fs       *flag.FlagSet
	v4, v6   bool
	json     bool
}

func newOneshot(name, synopsis, about, examples string) *oneshot {
	o := &oneshot{name: name, synopsis: synopsis, about: about, examples: examples}
	o.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	o.fs.BoolVar(&o.v4, "4", false, "use IPv4 only (resolve TARGET to an A record)")
	o.fs.BoolVar(&o.v6, "6", false, "use IPv6 only (resolve TARGET to an AAAA record)")
	o.fs.BoolVar(&o.json, "json", false, "print the wire-format result as one JSON line instead of a report")
	return o
}

func (o *oneshot) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: anycatch-probe %s %s\n\n%s\n\nFlags:\n", o.name, o.synopsis, strings.TrimSpace(o.about))
	o.fs.SetOutput(w)
	o.fs.PrintDefaults()
	fmt.Fprintf(w, "\nExamples:\n%s\n", strings.Trim(o.examples, "\n"))
	fmt.Fprintf(w, "\nExit codes: 0 answered, 1 no answer, 2 usage error, 3 could not measure.\n")
}

// parse parses flags wherever they appear among the positional arguments
// ("dns 198.51.100.53 --tcp" works) and returns the positional arguments. A
// non-negative code means: stop and exit with it (help or usage error).
func (o *oneshot) parse(args []string, stdout, stderr io.Writer) (pos []string, code int) {
	o.fs.SetOutput(io.Discard)
	o.fs.Usage = func() {}
	pos, err := cliflag.Parse(o.fs, args)
	if errors.Is(err, flag.ErrHelp) {
		o.usage(stdout)
		return nil, exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "anycatch-probe %s: %v\nRun \"anycatch-probe %s --help\" for usage.\n", o.name, err, o.name)
		return nil, exitUsage
	}
	if o.v4 && o.v6 {
		return nil, o.usageError(stderr, "-4 and -6 are mutually exclusive")
	}
	return pos, -1
}

func (o *oneshot) usageError(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "anycatch-probe %s: %s\nRun \"anycatch-probe %s --help\" for usage.\n", o.name, fmt.Sprintf(format, a...), o.name)
	return exitUsage
}

// millis converts a duration flag to a spec's milliseconds; 0 stays 0 (the
// spec's default) and anything positive is at least 1 ms.
func millis(d time.Duration) int {
	if d > 0 && d < time.Millisecond {
		return 1
	}
	return int(d / time.Millisecond)
}

// errResolve marks a target that could not be resolved (exit 3).
var errResolve = errors.New("cannot resolve")

// resolve turns TARGET (an IP address, possibly bracketed, or a hostname)
// into one address of the requested family, using the system resolver.
func resolve(ctx context.Context, target string, v4, v6 bool) (netip.Addr, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(target, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		switch {
		case v4 && !a.Is4():
			return a, fmt.Errorf("%s is not an IPv4 address but -4 was given", target)
		case v6 && a.Is4():
			return a, fmt.Errorf("%s is not an IPv6 address but -6 was given", target)
		}
		return a, nil
	}
	network := "ip"
	switch {
	case v4:
		network = "ip4"
	case v6:
		network = "ip6"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil || len(addrs) == 0 {
		if err == nil {
			err = errors.New("no addresses")
		}
		return netip.Addr{}, fmt.Errorf("%w %s: %v", errResolve, target, err)
	}
	return addrs[0].Unmap(), nil
}

// measure resolves target, runs spec once and prints the outcome. answered
// says whether a successful result got an answer (exit 0) or not (exit 1).
func (o *oneshot) measure(ctx context.Context, target string, spec measure.Spec,
	render func(io.Writer, *measure.Result), answered func(*measure.Result) bool,
	stdout, stderr io.Writer) int {
	addr, err := resolve(ctx, target, o.v4, o.v6)
	if errors.Is(err, errResolve) {
		fmt.Fprintf(stderr, "anycatch-probe %s: %v\n", o.name, err)
		return exitCannotRun
	}
	if err != nil {
		return o.usageError(stderr, "%v", err)
	}
	if err := spec.Validate(); err != nil {
		return o.usageError(stderr, "%v", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	m := measure.Measurement{ID: "cli/" + o.name, Target: target, Address: addr.String(), Spec: spec}
	r := probe.Run(ctx, m, probe.Options{})
	if o.json {
		b, _ := json.Marshal(r)
		stdout.Write(append(b, '\n'))
	}
	if r.Error != "" {
		fmt.Fprintf(stderr, "anycatch-probe %s: could not measure %s: %s\n", o.name, target, r.Error)
		if hint := permissionHint(r.Error); hint != "" {
			fmt.Fprintln(stderr, hint)
		}
		return exitCannotRun
	}
	if !o.json {
		render(stdout, &r)
	}
	if !answered(&r) {
		return exitNoAnswer
	}
	return exitOK
}

// permissionHint explains how to let the probe open ICMP sockets.
func permissionHint(msg string) string {
	m := strings.ToLower(msg)
	if !strings.Contains(m, "operation not permitted") && !strings.Contains(m, "permission denied") {
		return ""
	}
	return `hint: ICMP needs a raw socket or an unprivileged ICMP socket. Either
  - run as root, or grant the capability: sudo setcap cap_net_raw+ep $(command -v anycatch-probe)
  - or allow ping sockets for your group: sudo sysctl -w net.ipv4.ping_group_range="0 2147483647"
    (IPv6 uses the same setting)`
}

func runPing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newOneshot("ping", "[flags] TARGET", `
Send ICMP echo requests to TARGET (an IP address or a hostname) and print
each reply and a summary, like ping(8). Needs root, CAP_NET_RAW, or
unprivileged ICMP sockets (net.ipv4.ping_group_range).`, `
  anycatch-probe ping 193.0.14.129
  anycatch-probe ping -c 10 -i 200ms k.root-servers.net
  anycatch-probe ping -6 --json k.root-servers.net`)
	var spec measure.PingSpec
	var interval, timeout time.Duration
	for _, n := range []string{"c", "count"} {
		o.fs.IntVar(&spec.Count, n, 3, "number of echo requests (1..100)")
	}
	for _, n := range []string{"i", "interval"} {
		o.fs.DurationVar(&interval, n, time.Second, "time between requests (at least 10ms)")
	}
	for _, n := range []string{"s", "size"} {
		o.fs.IntVar(&spec.Size, n, 56, "ICMP payload bytes")
	}
	for _, n := range []string{"W", "timeout"} {
		o.fs.DurationVar(&timeout, n, 2*time.Second, "how long to wait for the last reply")
	}
	pos, code := o.parse(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return o.usageError(stderr, "want exactly one TARGET, got %d arguments", len(pos))
	}
	if spec.Count < 1 {
		return o.usageError(stderr, "-c %d: want at least one echo request", spec.Count)
	}
	if interval <= 0 || timeout <= 0 {
		return o.usageError(stderr, "--interval and --timeout must be positive")
	}
	spec.IntervalMS, spec.TimeoutMS = millis(interval), millis(timeout)
	return o.measure(ctx, pos[0], measure.Spec{Kind: measure.KindPing, Ping: &spec}, renderPing,
		func(r *measure.Result) bool { return r.Ping != nil && r.Ping.Received > 0 }, stdout, stderr)
}

func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newOneshot("trace", "[flags] TARGET", `
Trace the path to TARGET with a Paris traceroute (constant flow identifier,
so per-flow load balancers keep one path) and print one line per hop with
responders, RTTs and MPLS labels, like traceroute/mtr. ICMP probes need root
or CAP_NET_RAW; UDP probes also work unprivileged (IP_RECVERR).`, `
  anycatch-probe trace 193.0.14.129
  anycatch-probe trace --proto udp -m 20 k.root-servers.net
  anycatch-probe trace -q 1 -w 500ms --json 2001:7fd::1`)
	var spec measure.TraceSpec
	var timeout time.Duration
	o.fs.StringVar(&spec.Proto, "proto", "icmp", "probe protocol: icmp or udp")
	for _, n := range []string{"f", "first-hop"} {
		o.fs.IntVar(&spec.FirstHop, n, 1, "first TTL to probe")
	}
	for _, n := range []string{"m", "max-hops"} {
		o.fs.IntVar(&spec.MaxHops, n, 30, "last TTL to probe (at most 64)")
	}
	for _, n := range []string{"q", "queries"} {
		o.fs.IntVar(&spec.ProbesPerHop, n, 3, "probes per hop (1..10)")
	}
	for _, n := range []string{"p", "port"} {
		o.fs.IntVar(&spec.Port, n, 33434, "UDP destination port (udp probes)")
	}
	for _, n := range []string{"w", "timeout"} {
		o.fs.DurationVar(&timeout, n, 1500*time.Millisecond, "how long to wait for each probe's reply")
	}
	o.fs.IntVar(&spec.Window, "window", 16, "TTLs probed in parallel")
	pos, code := o.parse(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return o.usageError(stderr, "want exactly one TARGET, got %d arguments", len(pos))
	}
	if timeout <= 0 || spec.FirstHop < 1 || spec.MaxHops < 1 || spec.ProbesPerHop < 1 || spec.Window < 1 || spec.Port < 1 {
		return o.usageError(stderr, "--timeout, -f, -m, -q, -p and --window must be positive")
	}
	spec.TimeoutMS = millis(timeout)
	return o.measure(ctx, pos[0], measure.Spec{Kind: measure.KindTrace, Trace: &spec}, renderTrace,
		func(r *measure.Result) bool { return r.Trace != nil && r.Trace.Reached }, stdout, stderr)
}

// dnsFlags are the transport flags dns and identity share.
type dnsFlags struct {
	spec    measure.DNSSpec
	tcp     bool
	nsid    bool
	timeout time.Duration
}

func (d *dnsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.tcp, "tcp", false, "query over TCP (default: UDP, falling back to TCP when the reply is truncated)")
	for _, n := range []string{"p", "port"} {
		fs.IntVar(&d.spec.Port, n, 53, "server port")
	}
	fs.BoolVar(&d.nsid, "nsid", true, "ask for the server's NSID (EDNS option); --nsid=false to omit")
	fs.DurationVar(&d.timeout, "timeout", 2*time.Second, "how long to wait for each try")
	fs.IntVar(&d.spec.Retries, "retries", 0, "extra UDP tries after a timeout (0..5)")
}

// check rejects values the spec would read as "default" (zero).
func (d *dnsFlags) check(o *oneshot, stderr io.Writer) int {
	if d.timeout <= 0 || d.spec.Port < 1 || d.spec.UDPSize == 0 && o.fs.Lookup("bufsize") != nil {
		return o.usageError(stderr, "--timeout, --port and --bufsize must be positive")
	}
	return -1
}

func (d *dnsFlags) apply() measure.DNSSpec {
	s := d.spec
	if d.tcp {
		s.Proto = "tcp"
	}
	s.NSID = &d.nsid
	s.TimeoutMS = millis(d.timeout)
	return s
}

func runDNS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newOneshot("dns", "[flags] SERVER [QNAME] [QTYPE] [QCLASS]", `
Send one DNS query to SERVER (an IP address or a hostname) and print the
reply like dig: header, flags, answers, NSID, query time. QNAME, QTYPE and
QCLASS may come in any order. Without QNAME the query is CHAOS TXT
hostname.bind; names ending in .bind or equal to id.server default to CHAOS
TXT, other names to IN A. Exit 0 means a reply arrived (any rcode).`, `
  anycatch-probe dns 193.0.14.129
  anycatch-probe dns 193.0.14.129 id.server
  anycatch-probe dns --tcp 2001:7fd::1 example.com AAAA IN
  anycatch-probe dns -p 5353 --rd 127.0.0.1 www.example.test A`)
	var d dnsFlags
	d.register(o.fs)
	var qtype, qclass string
	for _, n := range []string{"t", "type"} {
		o.fs.StringVar(&qtype, n, "", "query type mnemonic (TXT, A, AAAA, SOA, TYPE65, ...)")
	}
	o.fs.StringVar(&qclass, "class", "", "query class: IN or CH (CHAOS)")
	o.fs.BoolVar(&d.spec.Recurse, "rd", false, "set the recursion desired flag")
	o.fs.IntVar(&d.spec.UDPSize, "bufsize", 1232, "EDNS UDP buffer size to advertise (512..65535)")
	rulesPath := o.fs.String("rules", "", "identity rules file to name the site from the answer (e.g. the resolver's egress address for TXT o-o.myaddr.l.google.com); default: the shipped rules")
	pos, code := o.parse(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) < 1 || len(pos) > 4 {
		return o.usageError(stderr, "want SERVER [QNAME] [QTYPE] [QCLASS], got %d arguments", len(pos))
	}
	var qname string
	for _, a := range pos[1:] {
		switch u := strings.ToUpper(a); {
		case u == "IN" || u == "CH" || u == "CHAOS":
			qclass = u
		case isType(u):
			qtype = u
		case qname == "":
			qname = a
		default:
			return o.usageError(stderr, "%q: more than one QNAME", a)
		}
	}
	if qclass = strings.ToUpper(qclass); qclass == "CHAOS" {
		qclass = "CH"
	}
	lower := strings.ToLower(strings.TrimSuffix(qname, "."))
	chaosName := qname == "" || strings.HasSuffix(lower, ".bind") || lower == "id.server"
	if qclass == "" {
		qclass = "IN"
		if chaosName {
			qclass = "CH"
		}
	}
	if qtype == "" {
		qtype = "A"
		if chaosName || qclass == "CH" {
			qtype = "TXT"
		}
	}
	if !isType(qtype) {
		return o.usageError(stderr, "unknown qtype %q", qtype)
	}
	if qclass != "IN" && qclass != "CH" {
		return o.usageError(stderr, "unknown qclass %q (want IN or CH)", qclass)
	}
	if code := d.check(o, stderr); code >= 0 {
		return code
	}
	services, err := rulesets.Load(*rulesPath)
	if err != nil {
		return o.usageError(stderr, "--rules: %v", err)
	}
	spec := d.apply()
	spec.QName, spec.QType, spec.QClass = qname, qtype, qclass
	if qname != "" {
		spec.QName = strings.TrimSuffix(qname, ".") + "."
	}
	render := func(w io.Writer, r *measure.Result) { renderDNSWith(w, r, services) }
	return o.measure(ctx, pos[0], measure.Spec{Kind: measure.KindDNS, DNS: &spec}, render,
		func(r *measure.Result) bool {
			return r.DNS != nil && len(r.DNS.Exchanges) > 0 && r.DNS.Exchanges[0].Error == ""
		}, stdout, stderr)
}

func isType(s string) bool {
	_, err := dns.ParseType(s)
	return err == nil
}

func runIdentity(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newOneshot("identity", "[flags] SERVER", `
Ask SERVER (an anycast DNS address or a hostname) which instance answers:
CHAOS TXT hostname.bind and id.server, each with the EDNS NSID option, sent
concurrently. Prints the identity first, then each exchange. Exit 0 means
at least one identity string came back.`, `
  anycatch-probe identity 193.0.14.129
  anycatch-probe identity -6 k.root-servers.net
  anycatch-probe identity --tcp --json 2001:7fd::1`)
	var d dnsFlags
	d.register(o.fs)
	rulesPath := o.fs.String("rules", "", "identity rules file (catchment/rulesets format) to name the site; default: the rules shipped for well-known services")
	pos, code := o.parse(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return o.usageError(stderr, "want exactly one SERVER, got %d arguments", len(pos))
	}
	if code := d.check(o, stderr); code >= 0 {
		return code
	}
	services, err := rulesets.Load(*rulesPath)
	if err != nil {
		return o.usageError(stderr, "--rules: %v", err)
	}
	spec := d.apply()
	render := func(w io.Writer, r *measure.Result) { renderIdentityWith(w, r, services) }
	return o.measure(ctx, pos[0], measure.Spec{Kind: measure.KindIdentity, DNS: &spec}, render,
		func(r *measure.Result) bool { return r.DNS != nil && !r.DNS.Identity.Empty() }, stdout, stderr)
}
