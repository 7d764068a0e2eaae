package ntp

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// recorded lists NTP server replies captured from real servers and
// published in other projects' test suites (testdata/<file>.hex names the
// source of each; testdata/README.md lists them all). The want values are
// what the source's own decoder printed for the packet (tcpdump -v, Zeek's
// ntp.log, scapy's asserts) where it printed one, and otherwise what RFC
// 5905 says the bytes mean; none is copied from this package's output.
var recorded = []struct {
	file                   string
	leap, version, stratum int
	refID, kiss            string
	// Root delay and dispersion in seconds, as the source printed them
	// (six decimals, rounded by Zeek, cut by tcpdump): checks that the
	// fixture is the packet the source decoded.
	rootDelayS, rootDispS float64
	// Transmit timestamp as Unix seconds (Zeek prints them so; tcpdump's
	// NTP seconds less 2208988800); 0 where the source printed none.
	xmtUnix float64
}{
	{"stratum1-gps", 0, 4, 1, "GPS", "", 0, 0, 1559246622.073740},
	{"stratum1-ctd", 0, 4, 1, "CTD", "", 0, 0.000122, 0},
	{"stratum2-ipv4", 0, 4, 2, "132.199.7.201", "", 0.000320, 0.036407, 3712483316.929948437 - 2208988800},
	{"stratum3-nts-cloudflare", 0, 4, 3, "10.31.8.128", "", 0.017074, 0.000732, 3869213010.188123546 - 2208988800},
	{"v3-stratum3", 0, 3, 3, "185.19.184.35", "", 0.011765, 0.001526, 1559246627.050438},
	{"kod-init-mac", 3, 4, 0, "INIT", "INIT", 0, 0.010895, 0},
	{"kod-step-cryptonak", 3, 4, 0, "STEP", "STEP", 0, 0.001373, 3706870329.516074047 - 2208988800},
}

// readFixture returns the packet in testdata/<name>.hex: hex digits, with
// white space and '#' lines (the source note) ignored.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// wire is what the header bytes say, read here straight from the packet
// (RFC 5905 figure 8) so the parser is checked against arithmetic it does
// not share: 16.16 fixed point divided by 65536 as a float, timestamps
// split into seconds and a 2^-32 fraction.
type wire struct {
	leap, version, mode, stratum int
	rootDelayMS, rootDispMS      float64
	xmtUnix                      float64
}

func readWire(b []byte) wire {
	const ntpToUnix = 2208988800 // seconds from 1900 to 1970
	return wire{
		leap:        int(b[0]) / 64,
		version:     int(b[0]) / 8 % 8,
		mode:        int(b[0]) % 8,
		stratum:     int(b[1]),
		rootDelayMS: float64(uint32(b[4])<<24|uint32(b[5])<<16|uint32(b[6])<<8|uint32(b[7])) / 65536 * 1000,
		rootDispMS:  float64(uint32(b[8])<<24|uint32(b[9])<<16|uint32(b[10])<<8|uint32(b[11])) / 65536 * 1000,
		xmtUnix: float64(uint32(b[40])<<24|uint32(b[41])<<16|uint32(b[42])<<8|uint32(b[43])) - ntpToUnix +
			float64(uint32(b[44])<<24|uint32(b[45])<<16|uint32(b[46])<<8|uint32(b[47]))/(1<<32),
	}
}

// msTolerance is how far a millisecond value may be from the exact one:
// results keep whole microseconds.
const msTolerance = 0.001

func TestParseRecordedReplies(t *testing.T) {
	for _, tt := range recorded {
		t.Run(tt.file, func(t *testing.T) {
			b := readFixture(t, tt.file)
			w := readWire(b)
			// The fixture is the packet its source decoded.
			if w.leap != tt.leap || w.version != tt.version || w.stratum != tt.stratum || w.mode != 4 ||
				math.Abs(w.rootDelayMS/1000-tt.rootDelayS) > 1e-6 || math.Abs(w.rootDispMS/1000-tt.rootDispS) > 1e-6 ||
				tt.xmtUnix != 0 && math.Abs(w.xmtUnix-tt.xmtUnix) > 1e-6 {
				t.Fatalf("fixture bytes say %+v, its source printed %+v", w, tt)
			}

			p, err := ParsePacket(b)
			if err != nil {
				t.Fatalf("a real server reply was rejected: %v", err)
			}
			if p.Leap != tt.leap || p.Version != tt.version || p.Mode != 4 || p.Stratum != tt.stratum {
				t.Errorf("got leap %d version %d mode %d stratum %d, want %d %d 4 %d",
					p.Leap, p.Version, p.Mode, p.Stratum, tt.leap, tt.version, tt.stratum)
			}
			if got := p.RefIDString(); got != tt.refID {
				t.Errorf("refid: got %q, want %q", got, tt.refID)
			}
			if got := p.Kiss(); got != tt.kiss {
				t.Errorf("kiss: got %q, want %q", got, tt.kiss)
			}
			if got := toTime(p.Transmit); math.Abs(float64(got.UnixNano())/1e9-w.xmtUnix) > 1e-6 {
				t.Errorf("transmit: got %s, want %.6f", got.UTC().Format(time.RFC3339Nano), w.xmtUnix)
			}

			var res measure.NTPResult
			t1 := time.Now()
			Fill(&res, &p, t1, t1.Add(time.Millisecond))
			if math.Abs(res.RootDelayMS-w.rootDelayMS) > msTolerance || math.Abs(res.RootDispMS-w.rootDispMS) > msTolerance {
				t.Errorf("root delay/dispersion: got %v/%v ms, want %v/%v ms", res.RootDelayMS, res.RootDispMS, w.rootDelayMS, w.rootDispMS)
			}
			if res.RefID != tt.refID || res.Kiss != tt.kiss || res.Stratum != tt.stratum || res.Leap != tt.leap || res.Version != tt.version {
				t.Errorf("result: got %+v", res)
			}
		})
	}
}

// TestQueryRecordedReplies sends each recorded reply from a loopback
// responder. The responder behaves as a real server does (RFC 5905 section
// 8): it copies the request's transmit timestamp into the reply's origin
// field, the only byte it changes, so the engine accepts the reply as the
// answer to its own query. The server's receive and transmit times stay as
// recorded, years ago, so the offset must come out as that age.
func TestQueryRecordedReplies(t *testing.T) {
	for _, tt := range recorded {
		t.Run(tt.file, func(t *testing.T) {
			b := readFixture(t, tt.file)
			w := readWire(b)
			var requests atomic.Int32 // written by the responder goroutine
			addr := server(t, func(req []byte) [][]byte {
				requests.Add(1)
				reply := bytes.Clone(b)
				copy(reply[24:32], req[40:48])
				return [][]byte{reply}
			})
			start := time.Now()
			res, err := Query(context.Background(), addr, measure.NTPSpec{TimeoutMS: 2000}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Error != "" {
				t.Fatalf("got error %q for a real server reply", res.Error)
			}
			if res.Stratum != tt.stratum || res.RefID != tt.refID || res.Kiss != tt.kiss || res.Leap != tt.leap || res.Version != tt.version {
				t.Errorf("got %+v, want stratum %d refid %q kiss %q leap %d version %d", res, tt.stratum, tt.refID, tt.kiss, tt.leap, tt.version)
			}
			if math.Abs(res.RootDelayMS-w.rootDelayMS) > msTolerance || math.Abs(res.RootDispMS-w.rootDispMS) > msTolerance {
				t.Errorf("root delay/dispersion: got %v/%v ms, want %v/%v ms", res.RootDelayMS, res.RootDispMS, w.rootDelayMS, w.rootDispMS)
			}
			if res.RTT < 0 || res.RTT > 2000 {
				t.Errorf("rtt: got %v ms", res.RTT)
			}
			if tt.kiss != "" {
				if res.OffsetMS != 0 {
					t.Errorf("kiss-o'-death: got offset %v ms, want none", res.OffsetMS)
				}
			} else if want := (w.xmtUnix - float64(start.UnixNano())/1e9) * 1000; math.Abs(res.OffsetMS-want) > 5000 {
				t.Errorf("offset: got %.0f ms, want about %.0f ms (the recording's age)", res.OffsetMS, want)
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("got %d requests, want 1", n)
			}
			r := measure.Result{V: 1, ID: measure.NewUUIDv7(start), Measurement: "m", Kind: measure.KindNTP, Time: start, Dst: "127.0.0.1", AF: 4, NTP: res}
			if err := r.Validate(time.Now()); err != nil {
				t.Errorf("result does not validate: %v", err)
			}
		})
	}
}

// TestRecordedRepliesSeedTheFuzzer keeps testdata/fuzz/FuzzParsePacket in
// step with the fixtures: each recorded reply is also a fuzz seed, under
// the same name.
func TestRecordedRepliesSeedTheFuzzer(t *testing.T) {
	for _, tt := range recorded {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", readFixture(t, tt.file))
		got, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParsePacket", tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s: fuzz seed differs from testdata/%s.hex", tt.file, tt.file)
		}
	}
}
