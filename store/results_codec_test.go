package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// codecLines are upload lines as probes send them: an identity result with
// raw replies and a ping result with replies.
func codecLines(tb testing.TB) map[string][]byte {
	tb.Helper()
	ts := time.Date(2026, 11, 20, 9, 59, 1, 123456789, time.UTC)
	id := identityResult("", ts, "ns1.ams.k.example")
	id.Target = ""
	ping := pingResult("", ts)
	ping.Target = ""
	out := map[string][]byte{}
	for name, r := range map[string]*measure.Result{"identity": id, "ping": ping} {
		b, err := json.Marshal(r)
		if err != nil {
			tb.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// BenchmarkLineToPayload is the collector's CPU per result outside the
// database: decode an upload line, validate it, encode the stored payload.
func BenchmarkLineToPayload(b *testing.B) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, name := range []string{"identity", "ping"} {
		line := codecLines(b)[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				var r measure.Result
				if err := measure.UnmarshalResult(line, &r); err != nil {
					b.Fatal(err)
				}
				if err := r.Validate(now); err != nil {
					b.Fatal(err)
				}
				r.Probe = "p-001"
				if _, _, err := EncodeResult(&r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
