package collector

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

var fuzzNow = time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)

var testLimits = UploadLimits{MaxDecompressed: 1 << 20, MaxLine: 64 << 10, MaxLines: 1000}

// seedLines are the upload shapes the decoder must handle; they also seed
// the fuzzer (see testdata/fuzz for the corpus files).
func seedLines() []string {
	seeds := []string{
		// a well-formed identity result
		`{"v":1,"id":"019a8f2e-0000-7000-8000-000000000001","msm":"k-root/identity/4","kind":"identity","ts":"2026-11-21T04:59:00Z","dst":"198.18.53.53","af":4,"dns":{"server":"198.18.53.53:53","exchanges":[{"qname":"hostname.bind.","qclass":"CH","qtype":"TXT","proto":"udp","rtt":12.5,"rcode":"NOERROR"}],"identity":{"hostname_bind":"ns1.ams.k.example"}}}`,
		// ping with replies
		`{"v":1,"id":"019a8f2e-0000-7000-8000-000000000002","msm":"k-root/ping/6","kind":"ping","ts":"2026-11-21T04:59:00Z","dst":"2001:db8::53","af":6,"ping":{"mode":"raw","size":56,"sent":3,"received":1,"median":3.2,"replies":[{"seq":0,"rtt":3.2}]}}`,
		// truncated JSON
		`{"v":1,"id":`,
		// wrong types
		`{"v":"1","id":42,"kind":["ping"]}`,
		// two payloads
		`{"v":1,"id":"019a8f2e-0000-7000-8000-000000000003","msm":"m","kind":"ping","ts":"2026-11-21T04:59:00Z","dst":"198.51.100.1","af":4,"ping":{"sent":1},"dns":{}}`,
		// CRLF and blank lines
		"{}\r\n\r\n\n",
		// not JSON at all
		"\x00\xff\xfe garbage",
	}
	return seeds
}

func TestDecodeUploadLines(t *testing.T) {
	body := strings.Join(seedLines()[:4], "\n") + "\n\n" + strings.Repeat("x", 70<<10) + "\n" + seedLines()[0]
	lines, err := DecodeUpload([]byte(body), false, testLimits, fuzzNow)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		n     int
		ok    bool
		class string
	}{{1, true, ""}, {2, true, ""}, {3, false, "malformed"}, {4, false, "malformed"}, {6, false, "too_long"}, {7, true, ""}}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d: %+v", len(lines), len(want), lines)
	}
	for i, w := range want {
		if lines[i].N != w.n || (lines[i].Result != nil) != w.ok || lines[i].Class != w.class {
			t.Errorf("line %d: got n=%d ok=%v class=%q (%s), want n=%d ok=%v class=%q",
				i, lines[i].N, lines[i].Result != nil, lines[i].Class, lines[i].Reason, w.n, w.ok, w.class)
		}
	}
}

func TestDecodeUploadLimits(t *testing.T) {
	// A gzip bomb: 64 MiB of zeros compresses to ~64 KiB.
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for i := 0; i < 64; i++ {
		zw.Write(zero)
	}
	zw.Close()
	if _, err := DecodeUpload(buf.Bytes(), true, testLimits, fuzzNow); err == nil || !strings.Contains(err.Error(), "decompressed") {
		t.Errorf("gzip bomb: err %v, want decompressed-size error", err)
	}
	many := strings.Repeat("{}\n", testLimits.MaxLines+1)
	if _, err := DecodeUpload([]byte(many), false, testLimits, fuzzNow); err == nil || !strings.Contains(err.Error(), "lines") {
		t.Errorf("too many lines: err %v, want line-count error", err)
	}
	if _, err := DecodeUpload([]byte("not gzip"), true, testLimits, fuzzNow); err == nil {
		t.Errorf("bad gzip: no error")
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct", "198.51.100.7:4000", "203.0.113.9", "198.51.100.7"},
		{"trusted proxy", "10.1.2.3:4000", "203.0.113.9", "203.0.113.9"},
		{"proxy chain", "10.1.2.3:4000", "198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"},
		{"trusted v6 loopback", "[::1]:4000", "2001:db8::5", "2001:db8::5"},
		{"garbage xff", "10.1.2.3:4000", "nonsense", "10.1.2.3"},
		{"no xff", "10.1.2.3:4000", "", "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := clientAddr(r, trusted); got != netip.MustParseAddr(tt.want) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestScheduleOffsetsStable(t *testing.T) {
	if a, b := offset("p-a", "k/ping/4", 300), offset("p-a", "k/ping/4", 300); a != b {
		t.Errorf("offset not deterministic: %d vs %d", a, b)
	}
	spread := map[int]bool{}
	for i := 0; i < 50; i++ {
		spread[offset("p-"+string(rune('a'+i)), "k/ping/4", 300)] = true
	}
	if len(spread) < 30 {
		t.Errorf("50 probes got only %d distinct offsets", len(spread))
	}
}

// FuzzDecodeUpload: the decoder must never panic, must respect its limits,
// and every accepted line must pass Validate.
func FuzzDecodeUpload(f *testing.F) {
	for _, s := range seedLines() {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(strings.Join(seedLines(), "\n")), false)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(seedLines()[0]))
	zw.Close()
	f.Add(buf.Bytes(), true)
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		lines, err := DecodeUpload(body, gz, UploadLimits{MaxDecompressed: 1 << 16, MaxLine: 4 << 10, MaxLines: 100}, fuzzNow)
		if err != nil {
			return
		}
		if len(lines) > 100 {
			t.Fatalf("%d lines past the limit", len(lines))
		}
		last := 0
		for _, l := range lines {
			if l.N <= last {
				t.Fatalf("line numbers not increasing: %d after %d", l.N, last)
			}
			last = l.N
			if (l.Result == nil) == (l.Reason == "") {
				t.Fatalf("line %d: result %v with reason %q", l.N, l.Result != nil, l.Reason)
			}
			if l.Result != nil {
				if err := l.Result.Validate(fuzzNow); err != nil {
					t.Fatalf("line %d accepted but invalid: %v", l.N, err)
				}
				want, err := json.Marshal(l.Result)
				if err != nil {
					t.Fatalf("line %d accepted but not re-encodable: %v", l.N, err)
				}
				if got, err := measure.AppendResult(nil, l.Result); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("line %d: AppendResult = %s, %v; json.Marshal = %s", l.N, got, err, want)
				}
			}
		}
	})
}

// BenchmarkParseLine measures decode + validate of one realistic line.
func BenchmarkParseLine(b *testing.B) {
	for _, bc := range []struct{ name, line string }{{"identity", seedLines()[0]}, {"ping", seedLines()[1]}} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(bc.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if l := ParseLine(1, line, fuzzNow); l.Result == nil {
					b.Fatal(l.Reason)
				}
			}
		})
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	// Keep the committed corpus in step with seedLines (regenerate with
	// ANYCATCH_WRITE_SEEDS=1).
	if os.Getenv("ANYCATCH_WRITE_SEEDS") == "" {
		t.Skip("set ANYCATCH_WRITE_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	for i, s := range seedLines() {
		p := filepath.Join("testdata", "fuzz", "FuzzDecodeUpload", "seed-"+string(rune('a'+i)))
		body := "go test fuzz v1\n[]byte(" + strconvQuote(s) + ")\nbool(false)\n"
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var _ = measure.Version

func strconvQuote(s string) string { return strconv.Quote(s) }
