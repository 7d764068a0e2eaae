package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

var (
	t0   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	src4 = netip.MustParseAddr("100.64.0.1")
	src6 = netip.MustParseAddr("2001:db8:1::1")
)

func path4(n int) []simHop {
	var h []simHop
	for i := 1; i < n; i++ {
		h = append(h, simHop{addr: netip.AddrFrom4([4]byte{100, 64, byte(i), 2})})
	}
	return append(h, simHop{addr: netip.MustParseAddr("198.18.0.1")})
}

func path6(n int) []simHop {
	var h []simHop
	for i := 1; i < n; i++ {
		h = append(h, simHop{addr: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i), 14: 0, 15: 2})})
	}
	return append(h, simHop{addr: netip.MustParseAddr("2001:db8:ffff::1")})
}

// simTrace runs one trace over sim with the given mode ("raw" or
// "recverr") and spec.
func simTrace(t *testing.T, n *simNet, spec measure.TraceSpec, ctx context.Context) (*measure.TraceResult, prober) {
	t.Helper()
	n.now = t0
	return simRun(t, n, spec, ctx, nil)
}

// simRun is simTrace on n's clock as it stands, remembering distances in
// dist (nil: none).
func simRun(t *testing.T, n *simNet, spec measure.TraceSpec, ctx context.Context, dist *Distances) (*measure.TraceResult, prober) {
	t.Helper()
	if n.v6 {
		n.src = src6
	} else {
		n.src = src4
	}
	n.sport = 40001
	s := measure.Spec{Kind: measure.KindTrace, Trace: &spec}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	sp := *s.WithDefaults().Trace
	f := newFlow(n.dst(), sp, probeCount(sp))
	f.src = n.src
	f.sport = n.sport
	var p prober
	if n.recverr {
		p = &recvErrProber{f: f, c: queueSim{n}}
	} else {
		rp := &rawProber{f: f, ic: n}
		if f.proto == icmpwire.ProtoUDP {
			rp.udp = udpSide{n}
		}
		p = rp
	}
	f.setFlowID()
	tr := &tracer{p: p, dst: n.dst(), spec: sp, now: n.clock, total: s.Timeout(), dist: dist}
	mode := ModeRaw
	if n.recverr {
		mode = ModeRecvErr
	}
	res, err := tr.run(ctx, newResult(f, sp, mode))
	if err != nil {
		t.Fatal(err)
	}
	r := measure.Result{V: 1, ID: measure.NewUUIDv7(t0), Measurement: "m", Kind: measure.KindTrace, Time: t0, Dst: n.dst().String(), AF: 4, Trace: res}
	if n.v6 {
		r.AF = 6
	}
	if err := r.Validate(t0); err != nil {
		t.Errorf("result does not validate: %v", err)
	}
	return res, p
}

// queueSim adapts simNet to the recverr prober's socket.
type queueSim struct{ *simNet }

func (q queueSim) WriteTo(b []byte, dst netip.AddrPort) error { return q.simNet.WriteToQueue(b, dst) }

func checkHops(t *testing.T, res *measure.TraceResult, hops []simHop) {
	t.Helper()
	if len(res.Hops) != len(hops) {
		t.Fatalf("got %d hops, want %d: %+v", len(res.Hops), len(hops), res.Hops)
	}
	for i, h := range res.Hops {
		if h.TTL != i+1 {
			t.Errorf("hop %d: got ttl %d", i, h.TTL)
		}
		for j, p := range h.Probes {
			if hops[i].silent {
				if !p.Timeout {
					t.Errorf("ttl %d probe %d: got %+v, want timeout", h.TTL, j, p)
				}
				continue
			}
			if p.From != hops[i].addr.String() || p.Timeout || p.ReplyTTL != 64-i {
				t.Errorf("ttl %d probe %d: got %+v, want from %v reply ttl %d", h.TTL, j, p, hops[i].addr, 64-i)
			}
		}
	}
}

func TestTraceSim(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v6      bool
		proto   string
		recverr bool
	}{
		{"icmp4", false, "icmp", false},
		{"icmp6", true, "icmp", false},
		{"udp4", false, "udp", false},
		{"udp6", true, "udp", false},
		{"udp4 recverr", false, "udp", true},
		{"udp6 recverr", true, "udp", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hops := path4(5)
			if tc.v6 {
				hops = path6(5)
			}
			n := &simNet{v6: tc.v6, hops: hops, recverr: tc.recverr}
			res, _ := simTrace(t, n, measure.TraceSpec{Proto: tc.proto}, context.Background())
			checkHops(t, res, hops)
			if !res.Reached {
				t.Error("got reached false")
			}
			// One round trip to the farthest hop, no waiting on TTLs past it.
			if got := n.now.Sub(t0); got != 5*time.Millisecond {
				t.Errorf("trace took %v, want 5ms", got)
			}
			// Parallel: the whole window went out at once, all probes
			// at TTLs 1-10 and one at TTLs 11-16, then the window slid
			// once per hop resolved before the destination answered
			// (hops 1-4 at 1-4 ms): 4 more single probes.
			if got := len(n.sentICMP) + len(n.sentUDP); got != 10*3+6+4 {
				t.Errorf("sent %d probes, want 40", got)
			}
			checkParis(t, n, tc.proto, res)
		})
	}
}

// checkParis asserts the flow identifier was constant for every probe and
// that probes were still distinguishable.
func checkParis(t *testing.T, n *simNet, proto string, res *measure.TraceResult) {
	t.Helper()
	seen := map[uint16]bool{}
	if proto == "icmp" {
		var csum uint16
		for i, b := range n.sentICMP {
			c := binary.BigEndian.Uint16(b[2:])
			if n.v6 {
				c = icmpwire.ICMPv6Checksum(b, n.src, n.dst())
			}
			if i == 0 {
				csum = c
			} else if c != csum {
				t.Fatalf("probe %d: icmp checksum %#04x, first was %#04x", i, c, csum)
			}
			if binary.BigEndian.Uint16(b[4:]) != binary.BigEndian.Uint16(n.sentICMP[0][4:]) {
				t.Fatalf("probe %d: echo id changed", i)
			}
			seen[seqOf(b)] = true
		}
		if res.FlowID != csum {
			t.Errorf("got FlowID %#04x, want the probes' checksum %#04x", res.FlowID, csum)
		}
	} else {
		for _, b := range n.sentUDP {
			c := icmpwire.UDPChecksum(b, n.src, n.dst(), n.sport, n.dport)
			seen[c] = true
		}
	}
	if len(seen) != len(n.sentICMP)+len(n.sentUDP) {
		t.Errorf("only %d distinct probe identifiers for %d probes", len(seen), len(n.sentICMP)+len(n.sentUDP))
	}
}

func TestTraceMPLS(t *testing.T) {
	labels := []measure.MPLSLabel{{Label: 24001, TC: 0, S: true, TTL: 1}}
	hops := path4(4)
	hops[1].mpls = labels
	n := &simNet{hops: hops}
	res, _ := simTrace(t, n, measure.TraceSpec{}, context.Background())
	for _, p := range res.Hops[1].Probes {
		if !slices.Equal(p.MPLS, labels) {
			t.Errorf("got MPLS %+v, want %+v", p.MPLS, labels)
		}
	}
	if res.Hops[0].Probes[0].MPLS != nil {
		t.Errorf("hop 1 got MPLS %+v, want none", res.Hops[0].Probes[0].MPLS)
	}
}

func TestTraceTruncatedQuoteAndSilentHop(t *testing.T) {
	for _, recverr := range []bool{false, true} {
		hops := path4(5)
		hops[1].quote = 4 // transport header cut: cannot tell probes apart
		hops[2].silent = true
		proto := "icmp"
		if recverr {
			proto = "udp"
		}
		n := &simNet{hops: hops, recverr: recverr}
		res, p := simTrace(t, n, measure.TraceSpec{Proto: proto}, context.Background())
		hops[1].silent = true // expected outcome: timeouts
		checkHops(t, res, hops)
		if got := n.now.Sub(t0); got != 1500*time.Millisecond {
			t.Errorf("recverr=%v: trace took %v, want the 1.5s probe timeout", recverr, got)
		}
		drops := 0
		switch p := p.(type) {
		case *rawProber:
			drops = p.drop
		case *recvErrProber:
			drops = p.drop
		}
		if drops != 3 {
			t.Errorf("recverr=%v: dropped %d replies, want the 3 truncated ones", recverr, drops)
		}
	}
}

func TestTraceLateAndDuplicate(t *testing.T) {
	hops := path4(3)
	hops[0].delay = func(n int) time.Duration {
		if n == 0 {
			return 1600 * time.Millisecond // after its 1.5 s timeout
		}
		return time.Millisecond
	}
	hops[0].dups = 1
	hops[1].delay = func(int) time.Duration { return 1700 * time.Millisecond } // still pending when the late one lands
	n := &simNet{hops: hops}
	res, _ := simTrace(t, n, measure.TraceSpec{TimeoutMS: 2000, Window: 1, ProbesPerHop: 2}, context.Background())
	// Window 1: TTL 2 starts only after TTL 1 resolves.
	p := res.Hops[0].Probes
	if p[0].Timeout || p[0].RTT != 1600 || p[0].Late {
		t.Errorf("slow probe within its timeout: got %+v", p[0])
	}
	_ = p
	// Now a reply after the timeout.
	hops = path4(3)
	hops[0].delay = func(n int) time.Duration {
		if n == 0 {
			return 1600 * time.Millisecond
		}
		return time.Millisecond
	}
	hops[1].delay = func(int) time.Duration { return 500 * time.Millisecond }
	n = &simNet{hops: hops}
	res, _ = simTrace(t, n, measure.TraceSpec{TimeoutMS: 1500, Window: 1, ProbesPerHop: 2}, context.Background())
	p = res.Hops[0].Probes
	if !p[0].Late || p[0].Timeout || p[0].RTT != 1600 || p[0].From != hops[0].addr.String() {
		t.Errorf("late probe: got %+v, want Late with rtt 1600", p[0])
	}
	if p[1].Late || p[1].RTT != 1 {
		t.Errorf("prompt probe: got %+v", p[1])
	}
	if len(res.Hops) != 3 || !res.Reached {
		t.Errorf("got %d hops reached %v, want 3 true", len(res.Hops), res.Reached)
	}
}

func TestTraceForeignReplies(t *testing.T) {
	hops := path4(3)
	n := &simNet{hops: hops}
	other := netip.MustParseAddr("198.18.9.9")
	n.extra = func(n *simNet, ttl int, probe []byte) {
		forged := append([]byte(nil), probe...)
		forged[0] = icmpwire.V4EchoReply
		at := n.now.Add(500 * time.Microsecond)
		add := func(b []byte, from netip.Addr) { n.queue = append(n.queue, simPkt{at: at, b: b, from: from, ttl: 1}) }
		add(forged, other) // echo reply from a host we did not probe
		bad := append([]byte(nil), forged...)
		bad[5] ^= 1 // other id
		add(bad, n.dst())
		bad = append([]byte(nil), forged...)
		bad[11] ^= 1 // right id/seq, wrong nonce: forged by someone guessing
		add(bad, n.dst())
		q := icmpwire.AppendIPHeader(nil, n.src, other, icmpwire.ProtoICMP, 1, 0, len(probe))
		add(icmpwire.AppendError(nil, false, icmpwire.V4TimeExceeded, 0, append(q, probe...), nil, false), hops[0].addr) // quote for another destination
		add(make([]byte, 60000), hops[0].addr)                                                                           // junk
		add([]byte{11}, hops[0].addr)
	}
	res, p := simTrace(t, n, measure.TraceSpec{}, context.Background())
	checkHops(t, res, hops)
	if d := p.(*rawProber).drop; d < 6 {
		t.Errorf("dropped %d forged replies, want >= 6", d)
	}
}

func TestTraceCancelPromptNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 10 {
		b := newBlockingNet()
		sp := *measure.Spec{Kind: measure.KindTrace}.WithDefaults().Trace
		f := newFlow(netip.MustParseAddr("198.18.0.1"), sp, probeCount(sp))
		tr := &tracer{p: &rawProber{f: f, ic: b}, dst: f.dst, spec: sp, total: time.Minute}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		res, err := tr.run(ctx, &measure.TraceResult{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got err %v, want context.Canceled", err)
		}
		if el := time.Since(start); el > 200*time.Millisecond {
			t.Fatalf("cancel took %v", el)
		}
		if res == nil || len(res.Hops) != 16 || !res.Hops[0].Probes[0].Timeout {
			t.Fatalf("got partial result %+v, want 16 hops of timeouts", res)
		}
	}
	for range 100 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
}

func TestTraceDeadline(t *testing.T) {
	b := newBlockingNet()
	sp := *measure.Spec{Kind: measure.KindTrace}.WithDefaults().Trace
	f := newFlow(netip.MustParseAddr("198.18.0.1"), sp, probeCount(sp))
	tr := &tracer{p: &rawProber{f: f, ic: b}, dst: f.dst, spec: sp, total: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	tr.run(ctx, &measure.TraceResult{})
	if el := time.Since(start); el > 300*time.Millisecond {
		t.Fatalf("trace with a 50ms deadline took %v", el)
	}
}

func TestRunInvalid(t *testing.T) {
	for _, c := range []struct {
		dst  string
		spec measure.TraceSpec
		opt  Options
	}{
		{"", measure.TraceSpec{}, Options{}},
		{"224.0.0.1", measure.TraceSpec{}, Options{}},
		{"198.18.0.1", measure.TraceSpec{Proto: "tcp"}, Options{}},
		{"198.18.0.1", measure.TraceSpec{MaxHops: 99}, Options{}},
		{"198.18.0.1", measure.TraceSpec{}, Options{Mode: "teleport"}},
	} {
		dst, _ := netip.ParseAddr(c.dst)
		if _, err := Run(context.Background(), dst, c.spec, c.opt); err == nil {
			t.Errorf("Run(%q, %+v, %+v): got nil error", c.dst, c.spec, c.opt)
		}
	}
}
