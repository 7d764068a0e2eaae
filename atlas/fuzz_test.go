package atlas

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Seeds: one real record of each kind (from the fixtures when present)
// plus hand-written edge cases; testdata/fuzz holds more.
var fuzzSeeds = []string{
	// dns with abuf (K-root hostname.bind)
	`{"type":"dns","prb_id":6036,"msm_id":1423386,"timestamp":1442845198,"dst_addr":"193.0.14.129","af":4,"proto":"UDP","result":{"rt":1.347,"abuf":"iO6EAAABAAEAAQAACGhvc3RuYW1lBGJpbmQAABAAA8AMABAAAwAAAAAAFhVuczEuZmktaGVsLmsucmlwZS5uZXTADAACAAMAAAAAAALADA=="}}`,
	// dns legacy answers, no abuf
	`{"type":"dns","prb_id":1,"msm_id":2,"timestamp":1588204986,"dst_addr":"9.9.9.9","result":{"rt":1,"answers":[{"TYPE":"TXT","NAME":"id.server","RDATA":["res110.mia.rrdns.pch.net"]}]}}`,
	// dns resultset with a timeout
	`{"type":"dns","prb_id":1,"msm_id":2,"timestamp":3,"resultset":[{"dst_addr":"198.51.100.1","time":4,"error":{"timeout":5000}}]}`,
	// dns socket error, destination only in dst_name
	`{"type":"dns","prb_id":1,"msm_id":2,"timestamp":3,"dst_name":"198.51.100.1","error":{"socket":"connect failed"}}`,
	// ping fw 0, numbers as strings
	`{"type":"ping","prb_id":"677","msm_id":1000192,"timestamp":1328019792,"dst_addr":"62.2.16.12","sent":"3","rcvd":"3","dup":"0","min":"57.876","avg":"58.042","max":"58.272"}`,
	// ping with timeouts and duplicates
	`{"type":"ping","prb_id":1,"msm_id":2,"timestamp":3,"addr":"2001:db8::1","sent":2,"rcvd":1,"dup":1,"result":[{"x":"*"},{"rtt":1,"dup":1},{"rtt":2},{"error":"sendto failed"}]}`,
	// traceroute with late, err, icmpext and a hop error
	`{"type":"traceroute","prb_id":1,"msm_id":2,"timestamp":3,"endtime":4,"dst_addr":"198.51.100.9","af":4,"proto":"UDP","paris_id":3,"result":[{"hop":1,"error":"connect failed"},{"hop":2,"result":[{"x":"*"},{"from":"198.51.100.1","late":2,"ttl":63},{"from":"198.51.100.9","rtt":3,"err":"H","icmpext":{"obj":[{"class":1,"type":1,"mpls":[{"label":16,"exp":0,"s":1,"ttl":1}]}]}}]}]}`,
}

func FuzzParseResult(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParseResult(data)
		if err != nil {
			return
		}
		for _, p := range ps {
			r := p.Result
			if r.ID.Version() != 7 || !r.Kind.Valid() || r.Probe == "" || r.Measurement == "" {
				t.Fatalf("bad result from %q: %+v", data, r)
			}
			if r.DNS == nil && r.Ping == nil && r.Trace == nil && r.Error == "" {
				t.Fatalf("result without payload or error from %q", data)
			}
			if _, err := FromResult(r, ""); err != nil {
				t.Fatalf("FromResult: %v", err)
			}
		}
	})
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("[" + fuzzSeeds[0] + "," + fuzzSeeds[4] + "]"))
	f.Add([]byte(fuzzSeeds[1] + "\n{broken\n\n" + fuzzSeeds[6] + "\n"))
	if dir, err := os.Getwd(); err == nil {
		// A prefix of a real array file: truncated mid-element.
		if b, err := os.ReadFile(filepath.Join(dir, "..", "..", "shared", "fixtures", "ripe-atlas", "msm-24980204-txt-id-server.json")); err == nil {
			f.Add(b[:len(b)/2])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		lastPos := 0
		for i := 0; ; i++ {
			it, err := r.Next()
			if err != nil {
				// Non-blank NDJSON input never vanishes silently.
				if in := bytes.TrimSpace(data); err == io.EOF && i == 0 && len(in) > 0 && in[0] == '{' {
					t.Fatalf("NDJSON input %q yielded nothing", data)
				}
				return
			}
			if (it.Err == nil) == (it.Result == nil) {
				t.Fatalf("item with both or neither result and error: %+v", it)
			}
			pos := it.Line + it.Element
			if pos < lastPos || pos == 0 {
				t.Fatalf("positions not increasing: %d after %d", pos, lastPos)
			}
			lastPos = pos
		}
	})
}
