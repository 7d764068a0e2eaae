package trace

import (
	"net/netip"
	"testing"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

// testFlow is a fixed flow so fuzz seeds stay meaningful.
func testFlow(proto string, v6 bool) *flow {
	dst, src := netip.MustParseAddr("198.18.0.1"), src4
	if v6 {
		dst, src = netip.MustParseAddr("2001:db8:ffff::1"), src6
	}
	sp := *measure.Spec{Kind: measure.KindTrace, Trace: &measure.TraceSpec{Proto: proto}}.WithDefaults().Trace
	f := newFlow(dst, sp, 90)
	f.src, f.id, f.seqBase, f.flowKey, f.sport, f.csBase = src, 0x4242, 1000, 0x1111, 40001, 5000
	copy(f.nonce[:], "anycatch")
	return f
}

// reply builds what hop (1-based) sends back for probe idx.
func seedReplies(f *flow) [][]byte {
	var out [][]byte
	var probe []byte
	proto := uint8(icmpwire.ProtoUDP)
	if f.proto == icmpwire.ProtoICMP {
		probe = f.echo(nil, 7)
		proto = icmpwire.ProtoICMP
		if f.v6 {
			proto = icmpwire.ProtoICMPv6
		}
		r := append([]byte(nil), probe...)
		r[0] = icmpwire.V4EchoReply
		if f.v6 {
			r[0] = icmpwire.V6EchoReply
		}
		out = append(out, r) // echo reply from the destination
	} else {
		pl := f.udpPayload(nil, 7)
		probe = icmpwire.AppendUDPHeader(nil, f.sport, f.dport, len(pl), icmpwire.UDPChecksum(pl, f.src, f.dst, f.sport, f.dport))
		probe = append(probe, pl...)
	}
	q := icmpwire.AppendIPHeader(nil, f.src, f.dst, proto, 1, 0, len(probe))
	q = append(q, probe...)
	te, un := uint8(icmpwire.V4TimeExceeded), uint8(icmpwire.V4Unreachable)
	if f.v6 {
		te, un = icmpwire.V6TimeExceeded, icmpwire.V6Unreachable
	}
	hl := 20
	if f.v6 {
		hl = 40
	}
	ext := icmpwire.AppendMPLSExtension(nil, []measure.MPLSLabel{{Label: 100, S: true, TTL: 1}})
	out = append(out,
		icmpwire.AppendError(nil, f.v6, te, 0, q, nil, false),        // full quote
		icmpwire.AppendError(nil, f.v6, te, 0, q[:hl+8], nil, false), // RFC 792 quote
		icmpwire.AppendError(nil, f.v6, te, 0, q[:hl+4], nil, false), // truncated
		icmpwire.AppendError(nil, f.v6, te, 0, q, ext, false),        // RFC 4884 MPLS
		icmpwire.AppendError(nil, f.v6, te, 0, q, ext, true),         // compat MPLS
		icmpwire.AppendError(nil, f.v6, un, 3, q, nil, false),        // unreachable
	)
	return out
}

func TestMatchSeeds(t *testing.T) {
	for _, proto := range []string{"icmp", "udp"} {
		for _, v6 := range []bool{false, true} {
			f := testFlow(proto, v6)
			for i, b := range seedReplies(f) {
				from := netip.MustParseAddr("100.64.1.2")
				if v6 {
					from = netip.MustParseAddr("2001:db8:2::2")
				}
				if i == 0 && proto == "icmp" {
					from = f.dst
				}
				r, err := f.match(b, from, 60)
				truncated := (proto == "icmp" && i == 3) || (proto == "udp" && i == 2)
				if truncated {
					if err != errTruncated {
						t.Errorf("%s v6=%v seed %d: got %v, want errTruncated", proto, v6, i, err)
					}
					continue
				}
				if err != nil || r.idx != 7 {
					t.Errorf("%s v6=%v seed %d: got idx %d err %v, want 7", proto, v6, i, r.idx, err)
				}
			}
		}
	}
}

func FuzzMatch(f *testing.F) {
	for _, proto := range []string{"icmp", "udp"} {
		for _, v6 := range []bool{false, true} {
			for _, b := range seedReplies(testFlow(proto, v6)) {
				f.Add(b, proto == "udp", v6)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, udp, v6 bool) {
		proto := "icmp"
		if udp {
			proto = "udp"
		}
		fl := testFlow(proto, v6)
		r, err := fl.match(b, fl.dst, 64)
		if err == nil && (r.idx < 0 || r.idx >= fl.n) {
			t.Fatalf("matched probe index %d out of 0..%d", r.idx, fl.n)
		}
	})
}

func FuzzMatchQueued(f *testing.F) {
	fl := testFlow("udp", false)
	pl := fl.udpPayload(nil, 7)
	f.Add(pl, true, false, uint8(icmpwire.OriginICMP))
	f.Add(pl[:8], true, false, uint8(icmpwire.OriginICMP)) // truncated quote
	f.Add(testFlow("icmp", false).echo(nil, 7), true, true, uint8(icmpwire.OriginICMP))
	f.Add(testFlow("icmp", false).echo(nil, 7), false, true, uint8(0)) // data: echo reply path
	f.Fuzz(func(t *testing.T, b []byte, isErr, icmp bool, origin uint8) {
		proto := "udp"
		if icmp {
			proto = "icmp"
		}
		fl := testFlow(proto, false)
		m := icmpwire.QueueMsg{Err: isErr, Payload: b, From: fl.dst,
			Ext: icmpwire.ExtendedErr{Origin: origin, Type: 11, Offender: netip.MustParseAddr("100.64.1.2")}}
		r, err := fl.matchQueued(&m)
		if err == nil && (r.idx < 0 || r.idx >= fl.n) {
			t.Fatalf("matched probe index %d out of 0..%d", r.idx, fl.n)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	for _, proto := range []string{"icmp", "udp"} {
		f := testFlow(proto, false)
		seeds := seedReplies(f)
		b.Run(proto+"/TimeExceededFull", func(b *testing.B) {
			msg := seeds[len(seeds)-6]
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.match(msg, f.dst, 60); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(proto+"/TimeExceededMPLS", func(b *testing.B) {
			msg := seeds[len(seeds)-3]
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.match(msg, f.dst, 60); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	f := testFlow("icmp", false)
	foreign := testFlow("icmp", false)
	foreign.id++
	msg := seedReplies(foreign)[1]
	b.Run("icmp/Foreign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.match(msg, f.dst, 60)
		}
	})
}
