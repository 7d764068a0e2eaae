package trace

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/internal/netnstest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

// chainHops is what a trace from NS[0] must find: each router's address
// toward the source, then the destination.
func chainHops(c *netnstest.Chain, dst netip.Addr) []netip.Addr {
	hops := c.Hop4
	if dst.Is6() {
		hops = c.Hop6
	}
	return append(append([]netip.Addr(nil), hops[1:len(hops)-1]...), dst)
}

func checkChain(t *testing.T, res *measure.TraceResult, want []netip.Addr) {
	t.Helper()
	if !res.Reached || len(res.Hops) != len(want) {
		t.Fatalf("got reached %v with %d hops %+v, want %d hops", res.Reached, len(res.Hops), res.Hops, len(want))
	}
	for i, h := range res.Hops {
		for _, p := range h.Probes {
			if p.From != want[i].String() || p.Timeout || p.ReplyTTL != 64-i {
				t.Errorf("ttl %d: got %+v, want from %v with reply ttl %d", h.TTL, p, want[i], 64-i)
			}
		}
	}
}

// capture reads the probes arriving in the destination namespace with a
// raw socket and returns their flow identifiers (ICMP checksum, or UDP
// ports) and per-probe identifiers (ICMP seq, UDP checksum).
type capture struct {
	conn net.PacketConn
	dst  netip.Addr
}

func startCapture(t *testing.T, c *netnstest.Chain, proto string) *capture {
	network := "ip4:icmp"
	if proto == "udp" {
		network = "ip4:udp"
	}
	var pc net.PacketConn
	var err error
	c.Do(t, len(c.NS)-1, func() { pc, err = net.ListenPacket(network, "0.0.0.0") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &capture{conn: pc, dst: c.Dst4}
}

func (cp *capture) flows(proto string) (flows, probes map[string]bool) {
	flows, probes = map[string]bool{}, map[string]bool{}
	buf := make([]byte, 2000)
	for range 1000 {
		cp.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, from, err := cp.conn.ReadFrom(buf)
		if err != nil {
			break
		}
		b := buf[:n]
		if n < 8 {
			continue
		}
		if proto == "icmp" {
			if b[0] != 8 {
				continue
			}
			flows[fmt.Sprintf("csum %x id %x", b[2:4], b[4:6])] = true
			probes[fmt.Sprintf("%x", b[6:8])] = true
		} else {
			if binary.BigEndian.Uint16(b[2:]) != 33434 {
				continue
			}
			flows[fmt.Sprintf("ports %x", b[0:4])] = true
			// veth leaves UDP checksums to "offload", so the field holds
			// only the pseudo-header sum here; compute what a real NIC
			// would have sent.
			src := icmpwire.AddrOf(from)
			cs := icmpwire.UDPChecksum(b[8:], src, cp.dst, binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]))
			probes[fmt.Sprint(cs)] = true
		}
	}
	return flows, probes
}

func TestNamespaceChain(t *testing.T) {
	c := netnstest.NewChain(t, 5, netnstest.Options{UnprivilegedPing: true}) // 3 routers
	for _, dst := range []netip.Addr{c.Dst4, c.Dst6} {
		for _, proto := range []string{"icmp", "udp"} {
			for _, mode := range []string{ModeRaw, ModeRecvErr} {
				t.Run(fmt.Sprintf("%s/%s/%s", dst, proto, mode), func(t *testing.T) {
					var cp *capture
					if dst.Is4() {
						cp = startCapture(t, c, proto)
					}
					var res *measure.TraceResult
					var err error
					start := time.Now()
					c.Do(t, 0, func() {
						res, err = Run(context.Background(), dst, measure.TraceSpec{Proto: proto}, Options{Mode: mode})
					})
					took := time.Since(start)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("complete trace in %v", took)
					if res.Mode != mode || !res.Paris {
						t.Errorf("got mode %q paris %v", res.Mode, res.Paris)
					}
					checkChain(t, res, chainHops(c, dst))
					if took > 500*time.Millisecond {
						t.Errorf("trace took %v on a sub-millisecond path", took)
					}
					if cp != nil {
						flows, probes := cp.flows(proto)
						// Probes with TTL >= 4 reach the destination: at least 3.
						if len(flows) != 1 || len(probes) < 3 {
							t.Errorf("at the destination: flows %v (want exactly 1), %d distinct probes", flows, len(probes))
						}
					}
				})
			}
		}
	}
}

// TestHelperUnprivilegedTrace is not a test: the unprivileged namespace
// test runs the binary as uid 65534 with this selected.
func TestHelperUnprivilegedTrace(t *testing.T) {
	dst := os.Getenv("ANYCATCH_TRACE_HELPER_DST")
	if dst == "" {
		t.Skip("helper process only")
	}
	res, err := Run(context.Background(), netip.MustParseAddr(dst), measure.TraceSpec{Proto: os.Getenv("ANYCATCH_TRACE_HELPER_PROTO")}, Options{})
	out, _ := json.Marshal(struct {
		Detect string
		Res    *measure.TraceResult
		Err    string
	}{Detect(), res, fmt.Sprint(err)})
	fmt.Printf("RESULT:%s\n", out)
}

func TestNamespaceUnprivilegedRecvErr(t *testing.T) {
	c := netnstest.NewChain(t, 4, netnstest.Options{UnprivilegedPing: true})
	bin := netnstest.SelfForOthers(t)
	for _, dst := range []netip.Addr{c.Dst4, c.Dst6} {
		for _, proto := range []string{"udp", "icmp"} {
			t.Run(dst.String()+"/"+proto, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := c.CommandAs(ctx, 0, 65534, bin, "-test.run=^TestHelperUnprivilegedTrace$")
				cmd.Env = append(os.Environ(), "ANYCATCH_TRACE_HELPER_DST="+dst.String(), "ANYCATCH_TRACE_HELPER_PROTO="+proto)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("helper: %v\n%s", err, out)
				}
				var got struct {
					Detect string
					Res    *measure.TraceResult
					Err    string
				}
				_, line, ok := strings.Cut(string(out), "RESULT:")
				if !ok {
					t.Fatalf("no result:\n%s", out)
				}
				line, _, _ = strings.Cut(line, "\n")
				if err := json.Unmarshal([]byte(line), &got); err != nil {
					t.Fatal(err)
				}
				if got.Detect != ModeRecvErr || got.Err != "<nil>" || got.Res.Mode != ModeRecvErr {
					t.Fatalf("as uid 65534: got detect %q err %s mode %q, want recverr", got.Detect, got.Err, got.Res.Mode)
				}
				checkChain(t, got.Res, chainHops(c, dst))
			})
		}
	}
}

// TestCompareTraceroute times our trace against traceroute -n -I on the
// same path (informational; needs the traceroute package).
func TestCompareTraceroute(t *testing.T) {
	if _, err := exec.LookPath("traceroute"); err != nil {
		t.Skip("traceroute not installed (skipped)")
	}
	c := netnstest.NewChain(t, 6, netnstest.Options{}) // 4 routers
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const runs = 5
	var ours, theirs time.Duration
	for range runs {
		start := time.Now()
		var err error
		c.Do(t, 0, func() { _, err = Run(ctx, c.Dst4, measure.TraceSpec{}, Options{}) })
		ours += time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if out, err := c.Command(ctx, 0, "traceroute", "-n", "-I", c.Dst4.String()).CombinedOutput(); err != nil {
			t.Fatalf("traceroute: %v\n%s", err, out)
		}
		theirs += time.Since(start)
	}
	t.Logf("5 hops, mean of %d: anycatch trace (icmp, paris, raw) %v; traceroute -n -I %v (includes fork/exec of ip netns exec)",
		runs, ours/runs, theirs/runs)
}
