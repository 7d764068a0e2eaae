package labtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/lab"
	"github.com/anycatch/anycatch/measure"
)

// Lab address ranges the trace responders must come from (docs/lab.md):
// router link nets; hop 1 is the transit's end of the client access net.
var (
	linkNetV4 = netip.MustParsePrefix("100.64.0.0/10")
	linkNetV6 = netip.MustParsePrefix("2001:db8:ff::/48")
)

// unpriv runs a command as nobody, the way an unprivileged probe runs.
var unpriv = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// probeBin returns the anycatch-probe binary the tests run in the lab:
// $ANYCATCH_PROBE_BIN, or one built once per test process into a
// directory nobody (uid 65534) can read.
func probeBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ANYCATCH_PROBE_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "anycatch-labtest-")
		if buildErr != nil {
			return
		}
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "anycatch-probe")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", buildBin, "github.com/anycatch/anycatch/cmd/anycatch-probe").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build anycatch-probe: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// upLab brings up topo under an instance name unique to this process and
// suffix, and takes it down in t.Cleanup. It skips without root.
func upLab(t *testing.T, topo *lab.Topology, suffix string) *lab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests need root (network namespaces): sudo go test ./probe/labtest")
	}
	if err := lab.Preflight(); err != nil {
		t.Skipf("lab preflight: %v", err)
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	name := fmt.Sprintf("p%05x%s", os.Getpid()&0xfffff, suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	l, err := lab.Up(ctx, topo, lab.Options{Name: name})
	if err != nil {
		_ = lab.Down(context.Background(), lab.Options{Name: name})
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab %s up in %v", name, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// openPingSockets lets every group open unprivileged ICMP sockets inside
// each client's namespace (the host keeps its own setting).
func openPingSockets(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	for _, c := range l.Clients() {
		if out, err := l.Exec(ctx, c.Name, "sysctl", "-w", "net.ipv4.ping_group_range=0 2147483647"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
}

// unlimitICMP lifts the kernel's ICMP error rate limits in every router
// namespace of the lab. With Linux's defaults (per source: one error per
// second, burst 6, for IPv4; 100 ms for IPv6) a destination answers only
// the first few UDP probes of a fast trace and none of a second trace
// run moments later from the same client, and intermediate routers go
// silent when several tools trace back to back. Real routers rate-limit
// too; these tests check path correctness and tool speed, not that.
func unlimitICMP(t testing.TB, ctx context.Context, l *lab.Lab) {
	t.Helper()
	for _, n := range l.Plan().Nodes {
		if n.Kind == lab.KindClient {
			continue
		}
		out, err := l.Exec(ctx, n.Name, "sysctl", "-q", "-w",
			"net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
			"net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=1000000")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
}

// runProbe runs anycatch-probe with args inside node (as nobody when
// asNobody) and decodes its --json result. Exit 1 (measured, no answer)
// is a result, not an error.
func runProbe(ctx context.Context, l *lab.Lab, bin, node string, asNobody bool, args ...string) (measure.Result, error) {
	argv := append([]string{bin}, args...)
	if asNobody {
		argv = append(slices.Clone(unpriv), argv...)
	}
	cmd := l.CommandContext(ctx, node, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return measure.Result{}, fmt.Errorf("%s on %s: %w: %s%s", strings.Join(argv, " "), node, err, stdout.Bytes(), stderr.Bytes())
	}
	var r measure.Result
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
		return r, fmt.Errorf("%s on %s: decode result: %w: %q", strings.Join(argv, " "), node, err, stdout.Bytes())
	}
	if r.Error != "" {
		return r, fmt.Errorf("%s on %s: %s", strings.Join(argv, " "), node, r.Error)
	}
	return r, nil
}

// hopWant is the router a trace must find at one TTL: its node, and the
// exact address it must answer from when the path is symmetric (invalid
// otherwise: any address of the node will do).
type hopWant struct {
	node string
	addr netip.Addr
}

func (h hopWant) String() string {
	if h.addr.IsValid() {
		return h.node + "/" + h.addr.String()
	}
	return h.node
}

// addrOwners maps every router-link and access-link address of the lab to
// its node.
func addrOwners(p *lab.Plan) map[netip.Addr]string {
	m := map[netip.Addr]string{}
	for _, k := range p.Links {
		for _, a := range []struct {
			node string
			pfx  netip.Prefix
		}{{k.A, k.A4}, {k.A, k.A6}, {k.B, k.B4}, {k.B, k.B6}} {
			if a.pfx.IsValid() {
				m[a.pfx.Addr()] = a.node
			}
		}
	}
	return m
}

// wantHops turns a truth path into the hops a trace must find: each
// router after the client, answering (Linux default) from its address on
// the link the packet came in on, since replies go back the same way on a
// symmetric path; the site answers from the anycast address itself.
func wantHops(p *lab.Plan, pt lab.PathTruth, dst netip.Addr) ([]hopWant, error) {
	if len(pt.Forward) < 3 {
		return nil, fmt.Errorf("no path: %v", pt.Forward)
	}
	rev := slices.Clone(pt.Return)
	slices.Reverse(rev)
	symmetric := slices.Equal(rev, pt.Forward)
	var hops []hopWant
	for i := 1; i < len(pt.Forward); i++ {
		node := pt.Forward[i]
		if i == len(pt.Forward)-1 {
			hops = append(hops, hopWant{node: node, addr: dst})
			break
		}
		h := hopWant{node: node}
		if symmetric {
			k, ok := p.Link(pt.Forward[i-1], node)
			if !ok {
				return nil, fmt.Errorf("no link %s-%s", pt.Forward[i-1], node)
			}
			pfx := k.A4
			switch {
			case node == k.A && dst.Is6():
				pfx = k.A6
			case node == k.B && dst.Is4():
				pfx = k.B4
			case node == k.B:
				pfx = k.B6
			}
			h.addr = pfx.Addr()
		}
		hops = append(hops, h)
	}
	return hops, nil
}

// checkTrace checks a trace result against the hops truth implies and
// returns its responders, one per TTL.
func checkTrace(t *testing.T, r measure.Result, want []hopWant, owners map[netip.Addr]string) []string {
	t.Helper()
	tr := r.Trace
	if tr == nil {
		t.Errorf("no trace payload in %+v", r)
		return nil
	}
	if !tr.Reached || len(tr.Hops) != len(want) {
		t.Errorf("reached %v in %d hops %s, want reached in %d hops %v", tr.Reached, len(tr.Hops), responders(tr), len(want), want)
		return responders(tr)
	}
	if !tr.Paris {
		t.Errorf("paris = false, want a constant flow")
	}
	for i, h := range tr.Hops {
		w := want[i]
		for _, p := range h.Probes {
			from, err := netip.ParseAddr(p.From)
			switch {
			case p.Timeout || err != nil:
				t.Errorf("ttl %d: probe %+v timed out or has no responder, want %v", h.TTL, p, w)
			case w.addr.IsValid() && from != w.addr:
				t.Errorf("ttl %d: responder %v, want %v", h.TTL, from, w)
			case !w.addr.IsValid() && owners[from] != w.node:
				t.Errorf("ttl %d: responder %v belongs to %q, want %v", h.TTL, from, owners[from], w)
			case i > 0 && i < len(want)-1 && !linkNetV4.Contains(from) && !linkNetV6.Contains(from):
				t.Errorf("ttl %d: responder %v is not a lab link address", h.TTL, from)
			}
		}
	}
	return responders(tr)
}

// responders lists each hop's first responder ("*" for none).
func responders(tr *measure.TraceResult) []string {
	var out []string
	for _, h := range tr.Hops {
		r := "*"
		for _, p := range h.Probes {
			if p.From != "" {
				r = p.From
				break
			}
		}
		out = append(out, r)
	}
	return out
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "v4"
	}
	return "v6"
}

// TestEnginesInLab runs the probe CLI in every client of the default lab,
// privileged and as nobody, and checks trace, ping and identity against
// the lab's truth; then it withdraws a site and checks that the engines
// follow the catchment onto a longer path.
func TestEnginesInLab(t *testing.T) {
	l := upLab(t, lab.DefaultTopology(), "e")
	bin := probeBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	openPingSockets(t, ctx, l)
	unlimitICMP(t, ctx, l)
	truth, err := l.Truth(ctx)
	if err != nil || !truth.Complete() {
		t.Fatalf("truth: %v (complete %v)", err, truth.Complete())
	}
	owners := addrOwners(l.Plan())
	topo := l.Topology()

	t.Run("clients", func(t *testing.T) {
		for _, c := range l.Clients() {
			ct, _ := truth.Client(c.Name)
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				for _, fam := range []struct {
					dst netip.Addr
					pt  lab.PathTruth
				}{{l.AnycastV4(), ct.V4}, {l.AnycastV6(), ct.V6}} {
					checkClient(t, ctx, l, bin, c.Name, fam.dst, fam.pt, owners, topo)
				}
			})
		}
	})

	// Withdraw gru: sao1's catchment moves to iad over sam-nae-iad, a
	// three-hop path whose middle hop answers from a router link address.
	t.Run("withdraw", func(t *testing.T) {
		if err := l.Withdraw(ctx, "gru"); err != nil {
			t.Fatal(err)
		}
		var ct lab.ClientTruth
		for range 50 { // at most ~5 s; BGP moves it in ~0.1 s
			truth, err := l.Truth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ct, _ = truth.Client("sao1")
			if ct.V4.Site == "iad" && ct.V6.Site == "iad" && len(ct.V4.Return) > 0 && len(ct.V6.Return) > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if ct.V4.Site != "iad" || ct.V6.Site != "iad" {
			t.Fatalf("sao1 truth after withdrawing gru: %+v, want site iad", ct)
		}
		// The data path follows the routers' best path within moments;
		// wait until the anycast address answers as iad.
		for i := 0; ; i++ {
			r, err := runProbe(ctx, l, bin, "sao1", false, "identity", "--json", "--timeout", "500ms", l.AnycastV4().String())
			if err == nil && r.DNS != nil && r.DNS.Identity != nil && r.DNS.Identity.NSID == "iad-b2" {
				break
			}
			if i == 20 {
				t.Fatalf("sao1 never reached iad after the withdrawal: %+v %v", r.DNS, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, fam := range []struct {
			dst netip.Addr
			pt  lab.PathTruth
		}{{l.AnycastV4(), ct.V4}, {l.AnycastV6(), ct.V6}} {
			if len(fam.pt.Forward) != 4 {
				t.Errorf("%s path %v, want sao1 sam nae iad", family(fam.dst), fam.pt.Forward)
			}
			checkClient(t, ctx, l, bin, "sao1", fam.dst, fam.pt, owners, topo)
		}
	})
}

// checkClient runs every engine from client to dst and checks it against
// pt, the truth for that family.
func checkClient(t *testing.T, ctx context.Context, l *lab.Lab, bin, client string, dst netip.Addr, pt lab.PathTruth, owners map[netip.Addr]string, topo *lab.Topology) {
	t.Helper()
	fam := family(dst)
	want, err := wantHops(l.Plan(), pt, dst)
	if err != nil {
		t.Errorf("%s %s: %v", client, fam, err)
		return
	}
	// Traceroute: ICMP and UDP, privileged (raw) and as nobody (recverr);
	// every variant finds the same responders.
	var first []string
	for _, proto := range []string{"icmp", "udp"} {
		for _, nobody := range []bool{false, true} {
			mode := map[bool]string{false: "raw", true: "recverr"}[nobody]
			name := fmt.Sprintf("%s %s trace %s/%s", client, fam, proto, mode)
			r, err := runProbe(ctx, l, bin, client, nobody, "trace", "--json", "--proto", proto, "-w", "1s", dst.String())
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if r.Trace == nil || r.Trace.Mode != mode || r.Trace.Proto != proto {
				t.Errorf("%s: result %+v, want proto %s mode %s", name, r.Trace, proto, mode)
				continue
			}
			t.Run(fmt.Sprintf("trace-%s-%s-%s", fam, proto, mode), func(t *testing.T) {
				got := checkTrace(t, r, want, owners)
				if first == nil {
					first = got
				} else if !slices.Equal(got, first) {
					t.Errorf("responders %v, want %v as the first trace found", got, first)
				}
			})
		}
	}

	// Ping: the fastest echo is within a few ms of the RTT the configured
	// delays imply (the forwarder adds ~0.1-0.3 ms per crossing). The
	// delay forwarder is a userspace process, so on a loaded machine all
	// echoes of one run can come late: up to three runs of three echoes,
	// and the fastest counts (nothing can beat the configured delay).
	exp := pt.ExpectedRTT.D()
	for _, nobody := range []bool{false, true} {
		mode := map[bool]string{false: "raw", true: "dgram"}[nobody]
		name := fmt.Sprintf("%s %s ping %s", client, fam, mode)
		best := time.Duration(-1)
		for try := 0; try < 3 && (best < 0 || best > exp+5*time.Millisecond); try++ {
			r, err := runProbe(ctx, l, bin, client, nobody, "ping", "--json", "-c", "3", "-i", "20ms", "-W", "2s", dst.String())
			if err != nil {
				t.Errorf("%s: %v", name, err)
				break
			}
			p := r.Ping
			if p == nil || p.Mode != mode || p.Received != 3 || p.Min == nil {
				t.Errorf("%s: %+v, want 3 replies over a %s socket", name, p, mode)
				break
			}
			if got := time.Duration(*p.Min * float64(time.Millisecond)); best < 0 || got < best {
				best = got
			}
		}
		if best >= 0 && (best < exp-500*time.Microsecond || best > exp+5*time.Millisecond) {
			t.Errorf("%s: min RTT %v, want within [-0.5, +5] ms of truth's %v", name, best, exp)
		}
	}

	// Identity: the answer names the site truth says this client reaches.
	r, err := runProbe(ctx, l, bin, client, false, "identity", "--json", dst.String())
	if err != nil {
		t.Errorf("%s %s identity: %v", client, fam, err)
		return
	}
	site, _ := topo.Site(pt.Site)
	id := r.DNS.Identity
	if id == nil {
		id = &measure.Identity{}
	}
	wantID := site.Identity
	if site.HideIdentity {
		wantID = ""
	} else if wantID == "" {
		wantID = site.Code + ".lab"
	}
	if id.HostnameBind != wantID || id.IDServer != wantID || id.NSID != site.NSID {
		t.Errorf("%s %s identity: %+v, want hostname.bind and id.server %q, nsid %q (site %s)", client, fam, *id, wantID, site.NSID, site.Code)
	}
	if got := topo.SiteForIdentity(lab.Identity{Hostname: id.HostnameBind, NSID: id.NSID}); site.NSID != "" || !site.HideIdentity {
		if got != site.Code {
			t.Errorf("%s %s identity %+v maps to site %q, want %q", client, fam, *id, got, site.Code)
		}
	}
	if site.HideIdentity {
		for _, e := range r.DNS.Exchanges {
			if e.Rcode != "REFUSED" {
				t.Errorf("%s %s identity: %s rcode %q, want REFUSED from %s", client, fam, e.QName, e.Rcode, site.Code)
			}
		}
	}
}
