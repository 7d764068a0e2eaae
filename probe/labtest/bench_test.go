package labtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/internal/netnstest"
	"github.com/anycatch/anycatch/lab"
	"github.com/anycatch/anycatch/measure"
)

// benchTopology puts client c1 six hops and 50 ms one way (100 ms RTT)
// from the anycast site far, through a chain of five transits. A second
// site, alt, hangs off the middle of the chain but prepends its AS path,
// so BGP still prefers far: the client reaches the farther site, as
// anycast clients often do.
const benchTopology = `
sites:
  - {code: far, name: Far, asn: 65001, identity: far.bench.lab, nsid: far}
  - {code: alt, name: Alt, asn: 65002, prepend: 6}
transits:
  - {name: t1, asn: 65101}
  - {name: t2, asn: 65102}
  - {name: t3, asn: 65103}
  - {name: t4, asn: 65104}
  - {name: t5, asn: 65105}
links:
  - {a: t1, b: t2, delay: 10ms}
  - {a: t2, b: t3, delay: 10ms}
  - {a: t3, b: t4, delay: 10ms}
  - {a: t4, b: t5, delay: 10ms}
  - {a: far, b: t5, delay: 5ms}
  - {a: alt, b: t3, delay: 1ms}
clients:
  - {name: c1, region: ap, transit: t1, delay: 5ms}
`

// benchTool is one traceroute implementation under test.
type benchTool struct {
	name string
	argv []string // run inside the client's namespace
	// check verifies one run's output; nil accepts any exit 0.
	check func(out []byte) error
	times []time.Duration
	fails int
	last  []byte
}

// TestTraceBenchmark measures the wall time of one complete trace to the
// anycast address from a client ~100 ms and six hops away, for
// anycatch-probe and the usual tools, interleaved, and prints a markdown
// table. It also checks that ours finds the hops traceroute -I finds, and
// that its ICMP Paris flow is constant on the wire.
//
//	ANYCATCH_LAB_BENCH=1 go test ./probe/labtest -run TestTraceBenchmark -v
//
// ANYCATCH_LAB_BENCH_N sets the number of timed runs per tool (default 9,
// 3..21).
func TestTraceBenchmark(t *testing.T) {
	if testing.Short() || os.Getenv("ANYCATCH_LAB_BENCH") == "" {
		t.Skip("set ANYCATCH_LAB_BENCH=1 (and no -short) to run the lab trace benchmark")
	}
	n := 9
	if s := os.Getenv("ANYCATCH_LAB_BENCH_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 3 || v > 21 {
			t.Fatalf("ANYCATCH_LAB_BENCH_N=%q: want 3..21", s)
		}
		n = v
	}
	topo, err := lab.ParseTopology([]byte(benchTopology))
	if err != nil {
		t.Fatal(err)
	}
	l := upLab(t, topo, "b")
	bin := probeBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	unlimitICMP(t, ctx, l)
	truth, err := l.Truth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := truth.Client("c1")
	dst := l.AnycastV4()
	pt := ct.V4
	rtt := pt.ExpectedRTT.D()
	want, err := wantHops(l.Plan(), pt, dst)
	if err != nil {
		t.Fatal(err)
	}
	if pt.Site != "far" || len(want) != 6 {
		t.Fatalf("c1 truth %+v, want six hops to far", pt)
	}
	t.Logf("c1 -> %s: path %v, expected RTT %v", dst, pt.Forward, rtt)
	owners := addrOwners(l.Plan())

	// Ours first, then the reference traceroute -I.
	var ourHops, refHops []string
	tools := []*benchTool{
		{name: "anycatch-probe trace (ICMP Paris, raw)", argv: []string{bin, "trace", "--json", dst.String()},
			check: func(out []byte) error {
				var r measure.Result
				if err := json.Unmarshal(out, &r); err != nil {
					return err
				}
				if r.Trace == nil || !r.Trace.Reached || r.Trace.Mode != "raw" || !r.Trace.Paris || len(r.Trace.Hops) != len(want) {
					return fmt.Errorf("not a complete raw Paris trace: %+v", r.Trace)
				}
				ourHops = responders(r.Trace)
				return nil
			}},
		{name: "traceroute -n -I", argv: []string{"traceroute", "-n", "-I", dst.String()},
			check: func(out []byte) error {
				refHops = parseTraceroute(out)
				if len(refHops) == 0 || refHops[len(refHops)-1] != dst.String() {
					return fmt.Errorf("did not reach %v: %s", dst, out)
				}
				return nil
			}},
		{name: "traceroute -n (UDP)", argv: []string{"traceroute", "-n", dst.String()}, check: reaches(dst)},
		{name: "mtr -n -r -c 1", argv: []string{"mtr", "-n", "-r", "-c", "1", dst.String()}, check: reaches(dst)},
		{name: "scamper trace -P icmp-paris", argv: []string{"scamper", "-c", "trace -P icmp-paris", "-i", dst.String()}, check: reaches(dst)},
		// What every row pays for starting a process in the namespace.
		{name: "baseline: ip netns exec … true", argv: []string{"true"}},
	}
	var missing []string
	tools = slices.DeleteFunc(tools, func(bt *benchTool) bool {
		if _, err := exec.LookPath(bt.argv[0]); err != nil && bt.argv[0] != bin {
			missing = append(missing, bt.argv[0])
			return true
		}
		return false
	})
	if len(missing) > 0 {
		t.Logf("skipping tools not installed: %v (apt-get install -y traceroute mtr-tiny scamper)", missing)
	}

	// One untimed warm-up round (page cache, neighbour tables), then n
	// interleaved rounds, each starting with a different tool.
	for round := -1; round < n; round++ {
		for i := range tools {
			bt := tools[(i+max(round, 0))%len(tools)]
			d, out, err := timeRun(ctx, l, "c1", bt.argv)
			if err == nil && bt.check != nil {
				err = bt.check(out)
			}
			if err != nil {
				bt.fails++
				t.Errorf("%s: %v\n%s", bt.name, err, out)
				continue
			}
			bt.last = out
			if round >= 0 {
				bt.times = append(bt.times, d)
			}
		}
	}

	// Ours against truth and against traceroute -I.
	t.Logf("ours: engine time (duration_ms) median %.0f ms", medianEngine(t, l, bin, dst))
	var r measure.Result
	if err := json.Unmarshal(tools[0].last, &r); err == nil && r.Trace != nil {
		checkTrace(t, r, want, owners)
		t.Logf("ours: flow id %d, hops %v", r.Trace.FlowID, responders(r.Trace))
	}
	if refHops != nil && !slices.Equal(ourHops, refHops) {
		t.Errorf("ours found %v, traceroute -I found %v", ourHops, refHops)
	}
	checkParisOnWire(t, ctx, l, bin, ct, dst)

	// Report.
	pathRTT := float64(rtt) / 1e6
	budget := 2*pathRTT + 50
	var b strings.Builder
	fmt.Fprintf(&b, "\n| tool | median | min | max | runs |\n|---|---|---|---|---|\n")
	for _, bt := range tools {
		if len(bt.times) == 0 {
			fmt.Fprintf(&b, "| %s | — | — | — | 0/%d |\n", bt.name, n)
			continue
		}
		s := slices.Clone(bt.times)
		slices.Sort(s)
		m := msOf(s[len(s)/2])
		fmt.Fprintf(&b, "| `%s` | %.0f ms | %.0f ms | %.0f ms | %d/%d |\n", bt.name, m, msOf(s[0]), msOf(s[len(s)-1]), len(s), n)
	}
	ours := medianOf(tools, bin)
	ref := medianOf(tools, "traceroute -n -I")
	fmt.Fprintf(&b, "\npath: %d hops, expected RTT %.0f ms; goal: ours <= 1.5x traceroute -I (%.0f ms) and <= 2xRTT+50 ms (%.0f ms)\n",
		len(want), pathRTT, 1.5*ref, budget)
	t.Log(b.String())
	if ours > 0 && ours > budget {
		t.Errorf("ours: median %.0f ms, over the 2xRTT+50 ms budget of %.0f ms", ours, budget)
	}
	if ours > 0 && ref > 0 && ours > 1.5*ref {
		t.Errorf("ours: median %.0f ms, more than 1.5x traceroute -I's %.0f ms", ours, ref)
	}
}

// medianEngine runs ours 5 more times and returns the median of the
// engine's own duration_ms: the wall time minus process start-up.
func medianEngine(t *testing.T, l *lab.Lab, bin string, dst netip.Addr) float64 {
	var d []float64
	for range 5 {
		r, err := runProbe(context.Background(), l, bin, "c1", false, "trace", "--json", dst.String())
		if err != nil {
			t.Error(err)
			return 0
		}
		d = append(d, r.DurationMS)
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func msOf(d time.Duration) float64 { return float64(d) / 1e6 }

// medianOf returns the median wall time, in ms, of the tool whose name
// starts with prefix (its binary path for ours); 0 if it has no runs.
func medianOf(tools []*benchTool, prefix string) float64 {
	for _, bt := range tools {
		if strings.HasPrefix(bt.name, prefix) || bt.argv[0] == prefix {
			if len(bt.times) == 0 {
				return 0
			}
			s := slices.Clone(bt.times)
			slices.Sort(s)
			return msOf(s[len(s)/2])
		}
	}
	return 0
}

// timeRun runs argv in node and returns its wall time (including the
// few ms of ip netns exec every tool pays alike) and stdout.
func timeRun(ctx context.Context, l *lab.Lab, node string, argv []string) (time.Duration, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := l.CommandContext(ctx, node, argv...)
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
	}
	return d, out, err
}

// parseTraceroute returns the first responder of each hop line of
// traceroute -n (or scamper, mtr) output; "*" for a hop with none.
func parseTraceroute(out []byte) []string {
	var hops []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		ttl := strings.TrimSuffix(strings.TrimSuffix(f[0], ".|--"), ".")
		if _, err := strconv.Atoi(ttl); err != nil {
			continue
		}
		hop := "*"
		for _, tok := range f[1:] {
			if a, err := netip.ParseAddr(tok); err == nil {
				hop = a.String()
				break
			}
		}
		hops = append(hops, hop)
	}
	return hops
}

// reaches checks that the last hop of a tool's output is dst.
func reaches(dst netip.Addr) func([]byte) error {
	return func(out []byte) error {
		hops := parseTraceroute(out)
		if len(hops) == 0 || hops[len(hops)-1] != dst.String() {
			return fmt.Errorf("did not reach %v (hops %v)", dst, hops)
		}
		return nil
	}
}

// checkParisOnWire captures, in the site's namespace, the echo requests
// one ICMP trace of ours delivers to the anycast address (every TTL from
// the destination's up to the window's end arrives there) and checks that
// they all carry one ICMP identifier and the checksum the result reports
// as the flow identifier: per-flow load balancers hash exactly these.
func checkParisOnWire(t *testing.T, ctx context.Context, l *lab.Lab, bin string, ct lab.ClientTruth, dst netip.Addr) {
	t.Helper()
	// Let the previous tools' last probes (higher TTLs still crossing the
	// delay links when they exit) drain before listening.
	time.Sleep(500 * time.Millisecond)
	var pc net.PacketConn
	var err error
	if e := netnstest.Do(l.Namespace(ct.V4.Site), func() { pc, err = net.ListenPacket("ip4:icmp", "0.0.0.0") }); e != nil || err != nil {
		t.Fatalf("capture in %s: %v %v", ct.V4.Site, e, err)
	}
	defer pc.Close()
	r, err := runProbe(ctx, l, bin, ct.Client, false, "trace", "--json", "-w", "1s", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ id, sum uint16 }
	seen := map[key]int{}
	buf := make([]byte, 1500)
	for range 1000 { // bounded: at most (max hops x probes) requests arrive
		pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		// Go strips the IPv4 header: buf is the ICMP message.
		if n < 8 || buf[0] != 8 || from.(*net.IPAddr).IP.String() != l.Clients()[0].V4.String() {
			continue
		}
		seen[key{binary.BigEndian.Uint16(buf[4:6]), binary.BigEndian.Uint16(buf[2:4])}]++
	}
	if len(seen) != 1 {
		t.Errorf("echo requests at %s carry %d (id, checksum) flows %v, want one", ct.V4.Site, len(seen), seen)
		return
	}
	for k, c := range seen {
		if k.sum != r.Trace.FlowID {
			t.Errorf("wire checksum %#04x, result flow id %#04x", k.sum, r.Trace.FlowID)
		}
		t.Logf("Paris on the wire: %d echo requests at %s, all id %#04x checksum %#04x (flow id %d)", c, ct.V4.Site, k.id, k.sum, r.Trace.FlowID)
	}
}
