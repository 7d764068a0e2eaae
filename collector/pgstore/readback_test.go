package pgstore_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// TestUploadReadBack: a result read back from the store is exactly the
// result uploaded, with the probe and target the collector set: raw DNS
// replies (stored apart from the payload), nanosecond timestamps, strings
// that need escaping, empty and absent lists.
func TestUploadReadBack(t *testing.T) {
	r := newRig(t, pgtest.NewURL(t), nil)
	p, code, b := r.enroll(t, r.token(t, collector.TokenOptions{Name: "readback"}))
	if code != http.StatusCreated {
		t.Fatalf("enroll: %d %s", code, b)
	}
	odd := ident(1, measure.Identity{HostnameBind: "ns1.ams.k.example", NSID: "k\u00e9<&>\"\\\x01"})
	odd.Time = odd.Time.Add(123456789 * time.Nanosecond)
	odd.Src, odd.DurationMS = "192.0.2.7", 30.125
	odd.DNS.Exchanges[0].Raw = []byte{0x12, 0x34, 0x84, 0x00, 0, 1, 0xff}
	odd.DNS.Exchanges[0].Flags = []string{"qr", "aa"}
	odd.DNS.Exchanges[0].Answers = []measure.RR{{Name: "hostname.bind.", Type: "TXT", Class: "CH", Data: "ns1.ams.k.example"}}
	odd.DNS.Exchanges = append(odd.DNS.Exchanges,
		measure.DNSExchange{QName: "id.server.", QClass: "CH", QType: "TXT", Proto: "udp", Error: "timeout"},
		measure.DNSExchange{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "tcp", TCPFallback: true, Raw: []byte{0}})
	ts := base.Add(3 * time.Minute)
	ping := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts), Measurement: "k-root/ping/4", Kind: measure.KindPing,
		Time: ts, Dst: "198.18.53.53", AF: 4,
		Ping: &measure.PingResult{Mode: "raw", Size: 56, Sent: 3, Received: 2, Duplicates: 1, Min: fp(1.5), Avg: fp(2), Median: fp(2), Max: fp(2.5),
			Replies: []measure.PingReply{{Seq: 0, RTT: 1.5, TTL: 57}, {Seq: 1, RTT: 2.5, TTL: 57}, {Seq: 1, RTT: 2.6, TTL: 57, Dup: true}}}}
	empty := &measure.Result{V: 1, ID: measure.NewUUIDv7(ts.Add(time.Minute)), Measurement: "k-root/ping/4", Kind: measure.KindPing,
		Time: ts.Add(time.Minute), Dst: "198.18.53.53", AF: 4, Ping: &measure.PingResult{Mode: "dgram", Sent: 3, Replies: []measure.PingReply{}}}
	sent := []*measure.Result{ident(0, measure.Identity{HostnameBind: "ns2.ams.k.example"}), odd, ping, empty}
	code, ur := p.upload(sent...)
	if code != http.StatusOK || ur.Accepted != len(sent) {
		t.Fatalf("upload: %d %+v", code, ur)
	}
	var got []*measure.Result
	if err := r.db.StreamResults(context.Background(), store.ResultQuery{Probe: p.id}, func(res *measure.Result) error {
		got = append(got, res)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sent) {
		t.Fatalf("read back %d results, want %d", len(got), len(sent))
	}
	for i, want := range sent {
		w := *want
		w.Probe, w.Target = p.id, "k-root"
		if want.Ping != nil && len(want.Ping.Replies) == 0 {
			// An empty list is omitted on the wire and comes back absent.
			pr := *want.Ping
			pr.Replies = nil
			w.Ping = &pr
		}
		if !reflect.DeepEqual(got[i], &w) {
			t.Errorf("result %d read back:\n got %+v\nwant %+v", i, got[i], &w)
		}
	}
}

func fp(f float64) *float64 { return &f }
