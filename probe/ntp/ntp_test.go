package ntp

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// Packets laid out per RFC 5905 figure 8, with values a real server sends
// (kiss codes from RFC 5905 section 7.4). They are constructed, for the
// cases no published capture covers (a RATE kiss, leap 3 at stratum 2);
// replies recorded from real servers are in testdata/*.hex and
// recorded_test.go. No test sends a packet beyond loopback.
const (
	// LI 0, VN 4, mode 4, stratum 1, poll 3, precision -23, root delay
	// 0, root dispersion 0x00000010, refid "GPS\0".
	stratum1GPS = "240103e9" + "00000000" + "00000010" + "47505300" +
		"eb8f1a2000000000" + "0000000000000000" + "eb8f1a2180000000" + "eb8f1a2180100000"
	// stratum 2, refid 192.0.2.10 (its upstream), LI 3 (unsynchronised).
	stratum2 = "e40203e9" + "00000800" + "00000400" + "c000020a" +
		"eb8f1a2000000000" + "0000000000000000" + "eb8f1a2180000000" + "eb8f1a2180100000"
	// kiss-o'-death RATE: stratum 0, refid "RATE".
	kissRate = "e40000e9" + "00000000" + "00000000" + "52415445" +
		"0000000000000000" + "0000000000000000" + "0000000000000000" + "0000000000000000"
)

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePacket(t *testing.T) {
	for _, tt := range []struct {
		name, hex             string
		wantStratum           int
		wantRefID, wantKiss   string
		wantLeap, wantVersion int
		wantRootDelayMS       float64
	}{
		{"stratum 1 gps", stratum1GPS, 1, "GPS", "", 0, 4, 0},
		{"stratum 2 upstream", stratum2, 2, "192.0.2.10", "", 3, 4, 31.25},
		{"kiss rate", kissRate, 0, "RATE", "RATE", 3, 4, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePacket(mustHex(t, tt.hex))
			if err != nil {
				t.Fatal(err)
			}
			if p.Stratum != tt.wantStratum || p.RefIDString() != tt.wantRefID || p.Kiss() != tt.wantKiss ||
				p.Leap != tt.wantLeap || p.Version != tt.wantVersion || ms(p.RootDelay) != tt.wantRootDelayMS {
				t.Errorf("got stratum %d refid %q kiss %q leap %d version %d root delay %v",
					p.Stratum, p.RefIDString(), p.Kiss(), p.Leap, p.Version, ms(p.RootDelay))
			}
		})
	}
	for name, in := range map[string]string{
		"short":       stratum1GPS[:94],
		"client mode": "23" + stratum1GPS[2:],
		"version 0":   "04" + stratum1GPS[2:],
		"version 7":   "3c" + stratum1GPS[2:],
	} {
		if _, err := ParsePacket(mustHex(t, in)); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}

func TestNTPTime(t *testing.T) {
	now := time.Date(2026, 12, 3, 6, 0, 0, 500_000_000, time.UTC)
	if got := toTime(ToNTP(now)); got.Sub(now).Abs() > time.Microsecond {
		t.Errorf("round trip: got %s, want %s", got, now)
	}
	if got := toTime(ToNTP(time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC))); got.Year() != 2040 {
		t.Errorf("era 1: got %s", got)
	}
}

func TestRefIDEscapes(t *testing.T) {
	p := Packet{Stratum: 1, RefID: [4]byte{'X', 0xff, '\\', 0}}
	if got := p.RefIDString(); got != `X\xff\x5c` {
		t.Errorf("got %q", got)
	}
}

// server answers every request on 127.0.0.1 with reply(request).
func server(t *testing.T, reply func(req []byte) [][]byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() { // owned by the test: Cleanup waits
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, b := range reply(append([]byte(nil), buf[:n]...)) {
				pc.WriteTo(b, from)
			}
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// answer is a stratum-1 reply echoing req's transmit timestamp, with
// server times now.
func answer(t *testing.T, req []byte, base string) []byte {
	b := mustHex(t, base)
	copy(b[24:32], req[40:48])
	now := ToNTP(time.Now())
	binary.BigEndian.PutUint64(b[32:], now)
	binary.BigEndian.PutUint64(b[40:], now)
	return b
}

func TestQuery(t *testing.T) {
	addr := server(t, func(req []byte) [][]byte {
		if req[0] != 0x23 || len(req) != PacketSize {
			t.Errorf("request: got first byte %#x len %d, want v4 client 0x23 and %d bytes", req[0], len(req), PacketSize)
		}
		spoof := answer(t, req, stratum1GPS)
		spoof[24] ^= 0xff // wrong origin: must be ignored
		return [][]byte{spoof, answer(t, req, stratum1GPS)}
	})
	res, err := Query(context.Background(), addr, measure.NTPSpec{TimeoutMS: 2000}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" || res.Stratum != 1 || res.RefID != "GPS" || res.RTT <= 0 || res.RTT > 2000 || res.Version != 4 ||
		res.OffsetMS < -100 || res.OffsetMS > 100 {
		t.Errorf("got %+v", res)
	}
	r := measure.Result{V: 1, ID: measure.NewUUIDv7(time.Now()), Measurement: "m", Kind: measure.KindNTP, Time: time.Now(), Dst: "127.0.0.1", AF: 4, NTP: res}
	if err := r.Validate(time.Now()); err != nil {
		t.Errorf("result does not validate: %v", err)
	}
}

func TestQueryKissOfDeath(t *testing.T) {
	calls := 0
	addr := server(t, func(req []byte) [][]byte {
		calls++
		return [][]byte{answer(t, req, kissRate)}
	})
	res, err := Query(context.Background(), addr, measure.NTPSpec{TimeoutMS: 2000}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kiss != "RATE" || res.OffsetMS != 0 || res.Error != "" {
		t.Errorf("got %+v, want kiss RATE and no offset", res)
	}
	if calls != 1 {
		t.Errorf("got %d requests, want exactly 1 (no retry after a kiss)", calls)
	}
}

func TestQueryTimeoutAndMalformed(t *testing.T) {
	silent := server(t, func([]byte) [][]byte { return nil })
	start := time.Now()
	res, err := Query(context.Background(), silent, measure.NTPSpec{TimeoutMS: 300}, Options{})
	if err != nil || res.Error != "timeout" {
		t.Errorf("silent server: got %+v, %v, want timeout", res, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %s", d)
	}
	junk := server(t, func([]byte) [][]byte { return [][]byte{[]byte("hello")} })
	res, err = Query(context.Background(), junk, measure.NTPSpec{TimeoutMS: 1000}, Options{})
	if err != nil || !strings.HasPrefix(res.Error, "malformed reply:") {
		t.Errorf("junk: got %+v, %v, want malformed reply", res, err)
	}
}

// FuzzParsePacket: any bytes give a packet or an error, never a panic, and
// a parsed packet's text fields are printable and fit the result limits.
// Besides the seeds below, testdata/fuzz/FuzzParsePacket holds every
// recorded reply in testdata/*.hex (see TestRecordedRepliesSeedTheFuzzer).
func FuzzParsePacket(f *testing.F) {
	f.Add(mustHex(f, stratum1GPS))                              // stratum 1 refid GPS
	f.Add(mustHex(f, stratum2))                                 // stratum 2, IPv4 refid, leap 3
	f.Add(mustHex(f, kissRate))                                 // kiss-o'-death
	f.Add(append(mustHex(f, stratum1GPS), make([]byte, 20)...)) // MAC after the header
	f.Add([]byte{0x24})                                         // runt
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			return
		}
		var res measure.NTPResult
		now := time.Now()
		Fill(&res, &p, now, now.Add(time.Millisecond))
		r := measure.Result{V: 1, ID: measure.NewUUIDv7(now), Measurement: "m", Kind: measure.KindNTP, Time: now, Dst: "127.0.0.1", AF: 4, NTP: &res}
		if err := r.Validate(now); err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if _, err := measure.AppendResult(nil, &r); err != nil {
			t.Fatalf("%x: encode: %v", b, err)
		}
	})
}

func TestQueryRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close() // nothing listens there now: the kernel answers port unreachable
	res, err := Query(context.Background(), addr, measure.NTPSpec{TimeoutMS: 1000}, Options{})
	if err != nil || res.Error != "refused" && res.Error != "timeout" {
		t.Errorf("got %+v, %v, want refused (or timeout where ICMP is filtered)", res, err)
	}
}
