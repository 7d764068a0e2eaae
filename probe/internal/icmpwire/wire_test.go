package icmpwire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/measure"
	"golang.org/x/sys/unix"
)

var (
	src4 = netip.MustParseAddr("100.64.0.1")
	dst4 = netip.MustParseAddr("198.18.0.1")
	rtr4 = netip.MustParseAddr("100.64.1.2")
	src6 = netip.MustParseAddr("2001:db8:1::1")
	dst6 = netip.MustParseAddr("2001:db8:ffff::1")
)

func TestParisEchoChecksumConstant(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		want := uint16(0)
		for seq := range 2000 {
			b := AppendEcho(nil, EchoProbe{V6: v6, ID: 0xbeef, Seq: uint16(seq * 37), Nonce: []byte("12345678"), Size: 32, Paris: true, FlowKey: 0x1234})
			var got uint16
			if v6 {
				got = ICMPv6Checksum(b, src6, dst6)
			} else {
				got = binary.BigEndian.Uint16(b[2:])
				if Checksum(b) != 0 {
					t.Fatalf("seq %d: checksum does not verify", seq)
				}
			}
			if seq == 0 {
				want = got
			} else if got != want {
				t.Fatalf("v6=%v seq %d: checksum %#04x, want constant %#04x", v6, seq, got, want)
			}
		}
	}
}

func TestUDPChecksumPayload(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		want := uint16(1 + r.IntN(0xfffe))
		p := make([]byte, 2+r.IntN(40))
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		src, dst := src4, dst4
		if r.IntN(2) == 0 {
			src, dst = src6, dst6
		}
		UDPChecksumPayload(p, src, dst, 40000, 33434, want)
		if got := UDPChecksum(p, src, dst, 40000, 33434); got != want {
			t.Fatalf("got checksum %#04x, want %#04x (payload %x)", got, want, p)
		}
	}
}

// timeExceeded forges a router's reply to an echo probe, quoting qlen
// bytes of the probe (-1: all of it).
func timeExceeded(v6 bool, probe []byte, qlen int, ext []byte, compat bool) []byte {
	src, dst, proto, typ := src4, dst4, uint8(ProtoICMP), uint8(V4TimeExceeded)
	if v6 {
		src, dst, proto, typ = src6, dst6, ProtoICMPv6, V6TimeExceeded
	}
	q := AppendIPHeader(nil, src, dst, proto, 1, 0x4242, len(probe))
	q = append(q, probe...)
	if qlen >= 0 {
		q = q[:min(len(q), qlen)]
	}
	return AppendError(nil, v6, typ, 0, q, ext, compat)
}

var labels = []measure.MPLSLabel{
	{Label: 16004, TC: 0, S: false, TTL: 1},
	{Label: 1048575, TC: 7, S: true, TTL: 255},
}

func TestParseQuote(t *testing.T) {
	probe4 := AppendEcho(nil, EchoProbe{ID: 7, Seq: 99, Size: 32, Nonce: []byte("abcdefgh")})
	probe6 := AppendEcho(nil, EchoProbe{V6: true, ID: 7, Seq: 99, Size: 32, Nonce: []byte("abcdefgh")})
	ext := AppendMPLSExtension(nil, labels)
	badExt := slices.Clone(ext)
	badExt[len(badExt)-1] ^= 1 // checksum no longer verifies
	tests := []struct {
		name          string
		v6            bool
		msg           []byte
		wantTransport bool
		wantPayload   int
		wantMPLS      []measure.MPLSLabel
		wantErr       bool
	}{
		{name: "v4 full quote", msg: timeExceeded(false, probe4, -1, nil, false), wantTransport: true, wantPayload: 32},
		{name: "v4 rfc792 28 bytes", msg: timeExceeded(false, probe4, 28, nil, false), wantTransport: true},
		{name: "v4 truncated to 24 bytes", msg: timeExceeded(false, probe4, 24, nil, false)},
		{name: "v4 ip header cut", msg: timeExceeded(false, probe4, 12, nil, false), wantErr: true},
		{name: "v4 rfc4884 mpls", msg: timeExceeded(false, probe4, -1, ext, false), wantTransport: true, wantPayload: 128 - 28, wantMPLS: labels},
		{name: "v4 compat mpls (length 0, 128 bytes)", msg: timeExceeded(false, probe4, -1, ext, true), wantTransport: true, wantPayload: 128 - 28, wantMPLS: labels},
		{name: "v4 extension bad checksum ignored", msg: timeExceeded(false, probe4, -1, badExt, true), wantTransport: true, wantPayload: 128 - 28 + len(badExt)},
		{name: "v6 full quote", v6: true, msg: timeExceeded(true, probe6, -1, nil, false), wantTransport: true, wantPayload: 32},
		{name: "v6 rfc4884 mpls", v6: true, msg: timeExceeded(true, probe6, -1, ext, false), wantTransport: true, wantPayload: 128 - 48, wantMPLS: labels},
		{name: "v6 truncated transport", v6: true, msg: timeExceeded(true, probe6, 44, nil, false)},
		{name: "short", msg: []byte{11, 0, 0}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.msg, tt.v6)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got err %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			q := m.Quote
			wantDst := dst4
			if tt.v6 {
				wantDst = dst6
			}
			if q.Dst != wantDst || q.TTL != 1 {
				t.Errorf("got quoted dst %v ttl %d, want %v 1", q.Dst, q.TTL, wantDst)
			}
			if q.HasTransport() != tt.wantTransport {
				t.Fatalf("got HasTransport %v, want %v", q.HasTransport(), tt.wantTransport)
			}
			if tt.wantTransport {
				if id, seq, ok := q.Echo(); !ok || id != 7 || seq != 99 {
					t.Errorf("got echo %d/%d/%v, want 7/99", id, seq, ok)
				}
			}
			if len(q.Payload) != tt.wantPayload {
				t.Errorf("got %d quoted payload bytes, want %d", len(q.Payload), tt.wantPayload)
			}
			if got := AppendMPLS(nil, m.Ext); !slices.Equal(got, tt.wantMPLS) {
				t.Errorf("got MPLS %+v, want %+v", got, tt.wantMPLS)
			}
		})
	}
}

func TestParseUDPQuote(t *testing.T) {
	q := AppendIPHeader(nil, src4, dst4, ProtoUDP, 1, 1, 8)
	q = AppendUDPHeader(q, 40000, 33434, 0, 0xabcd)
	m, err := Parse(AppendError(nil, false, V4Unreachable, 3, q, nil, false), false)
	if err != nil {
		t.Fatal(err)
	}
	sp, dp, cs, ok := m.Quote.UDP()
	if !ok || sp != 40000 || dp != 33434 || cs != 0xabcd {
		t.Errorf("got %d %d %#x %v, want 40000 33434 0xabcd", sp, dp, cs, ok)
	}
}

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	binary.NativeEndian.PutUint64(b, uint64(unix.CmsgLen(len(data))))
	binary.NativeEndian.PutUint32(b[8:], uint32(level))
	binary.NativeEndian.PutUint32(b[12:], uint32(typ))
	copy(b[unix.SizeofCmsghdr:], data)
	return b
}

func extErr4(typ, code uint8, off netip.Addr) []byte {
	d := make([]byte, 16+16)
	binary.NativeEndian.PutUint32(d, uint32(unix.EHOSTUNREACH))
	d[4], d[5], d[6] = OriginICMP, typ, code
	binary.NativeEndian.PutUint16(d[16:], unix.AF_INET)
	a := off.As4()
	copy(d[20:], a[:])
	return cmsg(unix.SOL_IP, unix.IP_RECVERR, d)
}

func ttlMsg(level, typ int32, ttl int) []byte {
	return cmsg(level, typ, binary.NativeEndian.AppendUint32(nil, uint32(ttl)))
}

func TestParseErrQueue(t *testing.T) {
	oob := append(ttlMsg(unix.SOL_IP, unix.IP_TTL, 62), extErr4(11, 0, rtr4)...)
	ee, ttl, err := ParseErrQueue(oob, false)
	if err != nil || ttl != 62 || ee.Type != 11 || ee.Origin != OriginICMP || ee.Offender != rtr4 {
		t.Fatalf("got %+v ttl %d err %v, want type 11 from %v ttl 62", ee, ttl, err, rtr4)
	}
	d := make([]byte, 16+28)
	d[4], d[5], d[6] = OriginICMP6, 3, 0
	binary.NativeEndian.PutUint16(d[16:], unix.AF_INET6)
	a := dst6.As16()
	copy(d[24:], a[:])
	oob = append(cmsg(unix.SOL_IPV6, unix.IPV6_RECVERR, d), ttlMsg(unix.SOL_IPV6, unix.IPV6_HOPLIMIT, 60)...)
	ee, ttl, err = ParseErrQueue(oob, true)
	if err != nil || ttl != 60 || ee.Offender != dst6 || ee.Type != 3 {
		t.Fatalf("v6: got %+v ttl %d err %v", ee, ttl, err)
	}
	if _, _, err := ParseErrQueue(oob[:10], true); err == nil {
		t.Error("truncated control data: got nil error")
	}
}

// loadSeeds reads testdata/<name>/*.hex: '#' lines are comments saying
// what the packet is, the rest is hex.
func loadSeeds(t testing.TB, name string) map[string][]byte {
	files, _ := filepath.Glob(filepath.Join("testdata", name, "*.hex"))
	if len(files) == 0 {
		t.Fatalf("no seeds in testdata/%s", name)
	}
	out := map[string][]byte{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var hx strings.Builder
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
				hx.WriteString(strings.ReplaceAll(l, " ", ""))
			}
		}
		fh.Close()
		b, err := hex.DecodeString(hx.String())
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// TestWriteSeeds regenerates the seed files: go test -run WriteSeeds -seeds.
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("ICMPWIRE_WRITE_SEEDS") == "" {
		t.Skip("set ICMPWIRE_WRITE_SEEDS=1 to regenerate testdata seeds")
	}
	probe4 := AppendEcho(nil, EchoProbe{ID: 7, Seq: 99, Size: 32, Nonce: []byte("abcdefgh"), Paris: true})
	probe6 := AppendEcho(nil, EchoProbe{V6: true, ID: 7, Seq: 99, Size: 32, Nonce: []byte("abcdefgh"), Paris: true})
	ext := AppendMPLSExtension(nil, labels)
	udpq := AppendUDPHeader(AppendIPHeader(nil, src4, dst4, ProtoUDP, 1, 1, 8), 40000, 33434, 0, 0xabcd)
	write := func(dir, name, comment string, b []byte) {
		os.MkdirAll(filepath.Join("testdata", dir), 0o755)
		var s bytes.Buffer
		for _, l := range strings.Split(comment, "\n") {
			s.WriteString("# " + l + "\n")
		}
		h := hex.EncodeToString(b)
		for len(h) > 64 {
			s.WriteString(h[:64] + "\n")
			h = h[64:]
		}
		s.WriteString(h + "\n")
		if err := os.WriteFile(filepath.Join("testdata", dir, name+".hex"), s.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("replies4", "echo-reply", "ICMPv4 echo reply, id 7 seq 99, Paris payload", append([]byte{0, 0}, probe4[2:]...))
	write("replies4", "te-full", "ICMPv4 time exceeded quoting the whole echo probe", timeExceeded(false, probe4, -1, nil, false))
	write("replies4", "te-28", "ICMPv4 time exceeded, RFC 792 quote: IP header + 8 bytes", timeExceeded(false, probe4, 28, nil, false))
	write("replies4", "te-truncated", "ICMPv4 time exceeded quoting only 24 bytes (transport cut)", timeExceeded(false, probe4, 24, nil, false))
	write("replies4", "te-mpls-rfc4884", "ICMPv4 time exceeded, RFC 4884 length 32 words, MPLS stack 16004/1048575", timeExceeded(false, probe4, -1, ext, false))
	write("replies4", "te-mpls-compat", "ICMPv4 time exceeded, pre-RFC 4884: length 0, 128-byte quote, MPLS stack", timeExceeded(false, probe4, -1, ext, true))
	write("replies4", "unreach-udp", "ICMPv4 port unreachable quoting a UDP probe 40000->33434 csum 0xabcd", AppendError(nil, false, V4Unreachable, 3, udpq, nil, false))
	write("replies6", "te-full", "ICMPv6 time exceeded quoting the whole echo probe", timeExceeded(true, probe6, -1, nil, false))
	write("replies6", "te-mpls", "ICMPv6 time exceeded, RFC 4884 length 16 (x8), MPLS stack", timeExceeded(true, probe6, -1, ext, false))
	write("replies6", "echo-reply", "ICMPv6 echo reply, id 7 seq 99", append([]byte{129, 0}, probe6[2:]...))
	write("errqueue4", "te", "IP_TTL 62 then IP_RECVERR time exceeded from 100.64.1.2", append(ttlMsg(unix.SOL_IP, unix.IP_TTL, 62), extErr4(11, 0, rtr4)...))
	write("errqueue4", "bad-len", "control message whose length runs past the buffer", append(ttlMsg(unix.SOL_IP, unix.IP_TTL, 62)[:16], 0xff))
}

func FuzzParse(f *testing.F) {
	for _, b := range loadSeeds(f, "replies4") {
		f.Add(b, false)
	}
	for _, b := range loadSeeds(f, "replies6") {
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		m, err := Parse(b, v6)
		if err != nil {
			return
		}
		ls := AppendMPLS(nil, m.Ext)
		if len(ls) > MaxMPLSLabels {
			t.Fatalf("%d labels", len(ls))
		}
		q := m.Quote
		if len(q.Transport) > 8 {
			t.Fatalf("transport %d bytes", len(q.Transport))
		}
		q.Echo()
		q.UDP()
	})
}

func FuzzAppendMPLS(f *testing.F) {
	f.Add(AppendMPLSExtension(nil, labels))
	f.Add([]byte{0x20, 0, 0, 0, 0, 3, 1, 1}) // object length below the 4-byte header
	f.Add([]byte{0x20, 0, 0, 0, 0xff, 0xff, 1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := len(AppendMPLS(nil, b)); n > MaxMPLSLabels || n > len(b)/4 {
			t.Fatalf("%d labels from %d bytes", n, len(b))
		}
	})
}

func FuzzParseErrQueue(f *testing.F) {
	for _, b := range loadSeeds(f, "errqueue4") {
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		ParseErrQueue(b, v6)
	})
}

func BenchmarkParse(b *testing.B) {
	probe4 := AppendEcho(nil, EchoProbe{ID: 7, Seq: 99, Size: 32, Nonce: []byte("abcdefgh"), Paris: true})
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"TimeExceeded28", timeExceeded(false, probe4, 28, nil, false)},
		{"TimeExceededFull", timeExceeded(false, probe4, -1, nil, false)},
		{"TimeExceededMPLS", timeExceeded(false, probe4, -1, AppendMPLSExtension(nil, labels), true)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(c.msg, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseErrQueue(b *testing.B) {
	oob := append(ttlMsg(unix.SOL_IP, unix.IP_TTL, 62), extErr4(11, 0, rtr4)...)
	b.ReportAllocs()
	for b.Loop() {
		ParseErrQueue(oob, false)
	}
}
