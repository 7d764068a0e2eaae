package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/internal/pgtest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// FuzzIngestPath fuzzes the whole ingest path against a real throwaway
// PostgreSQL: an upload line goes through the collector's decoder and
// Validate (collector.ParseLine), gets the fields the collector derives
// (probe, target, RTT, loss, catchment state and raw identity, which land
// in text and real columns), and is COPYed by store.IngestBatch. The
// property: a line the collector accepts is one PostgreSQL stores. Before
// this change a NUL in an identity or error string passed Validate and
// failed the COPY of the whole batch ("invalid byte sequence for encoding
// UTF8: 0x00").
func FuzzIngestPath(f *testing.F) {
	now := time.Now().UTC().Truncate(time.Second)
	ts := now.Add(-time.Hour).Format(time.RFC3339Nano)
	id := measure.NewUUIDv7(now.Add(-time.Hour)).String()
	head := `{"v":1,"id":"` + id + `","msm":"k-root/identity/4","kind":"identity","ts":"` + ts + `","dst":"198.18.53.53","af":4,`
	// Seeds: the shapes probes send, and the values PostgreSQL refuses.
	for _, s := range []string{
		// a plain identity answer
		head + `"dns":{"server":"198.18.53.53:53","exchanges":[{"qname":"hostname.bind.","qclass":"CH","qtype":"TXT","proto":"udp","rtt":12.5,"rcode":"NOERROR"}],"identity":{"hostname_bind":"ns1.ams.k.example"}}}`,
		// NUL escaped in the identity (the reported attack)
		head + `"dns":{"server":"198.18.53.53:53","exchanges":[{"qname":"hostname.bind.","qclass":"CH","qtype":"TXT","proto":"udp","rtt":12.5}],"identity":{"hostname_bind":"abc\u0000def"}}}`,
		// NUL in the error text, which has its own column
		head + `"error":"boom\u0000","dns":{"server":"198.18.53.53:53","exchanges":[]}}`,
		// a lone surrogate (becomes U+FFFD) and raw invalid UTF-8
		head + `"dns":{"server":"198.18.53.53:53","exchanges":[{"qname":"\ud800","rtt":1,"nsid":"\xff\xfe"}],"identity":{"nsid":"\ud800x"}}}`,
		// an RTT that overflows a real column
		head + `"dns":{"server":"198.18.53.53:53","exchanges":[{"qname":"hostname.bind.","rtt":1.7e308}],"identity":{"id_server":"x"}}}`,
		// a ping with huge and negative summaries
		`{"v":1,"id":"` + id + `","msm":"k-root/ping/4","kind":"ping","ts":"` + ts + `","dst":"198.18.53.53","af":4,"ping":{"mode":"raw","size":56,"sent":3,"received":2,"min":-50,"median":1.7e308,"replies":[{"seq":0,"rtt":1e-320}]}}`,
		// a trace hop with a NUL in its address text
		`{"v":1,"id":"` + id + `","msm":"k-root/trace/4","kind":"trace","ts":"` + ts + `","dst":"198.18.53.53","af":4,"trace":{"proto":"icmp","mode":"raw","first_hop":1,"max_hops":30,"hops":[{"ttl":1,"probes":[{"from":"10.0.0.1\u0000","rtt":1}]}]}}`,
		// answers with control characters and a DEL
		head + `"dns":{"server":"198.18.53.53:53","exchanges":[{"qname":"hostname.bind.","rtt":3,"answers":[{"name":"hostname.bind.","type":"TXT","class":"CH","ttl":0,"data":"\u0001\u001f\u007f"}]}],"identity":{"hostname_bind":"\u0001\u007f"}}}`,
	} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	db, err := store.Open(ctx, pgtest.NewURL(f), store.Options{MaxConns: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(db.Close)
	tg := &store.Target{Name: "k-root", Addr4: "198.18.53.53", IntervalSec: 60,
		Specs: []measure.Spec{{Kind: measure.KindIdentity}}, IdentityOrder: []string{"hostname_bind", "id_server", "nsid"}, Enabled: true}
	if err := db.CreateTarget(ctx, tg); err != nil {
		f.Fatal(err)
	}
	st := pgstore.New(db)
	f.Fuzz(func(t *testing.T, line []byte) {
		l := collector.ParseLine(1, line, now)
		if l.Result == nil {
			return // rejected with a reason: the probe drops it
		}
		r := l.Result
		// The collector takes results only within 90 days (authorize);
		// older days would only create partitions here.
		if r.Time.Before(now.Add(-90 * 24 * time.Hour)) {
			return
		}
		r.Probe, r.Target = "p-fuzz", tg.Name
		row := collector.Row{TargetID: tg.ID, Result: r}
		if rtt, ok := r.RTT(); ok {
			row.RTT = &rtt
		}
		if r.Ping != nil && r.Ping.Sent > 0 {
			loss := 1 - float64(r.Ping.Received)/float64(r.Ping.Sent)
			row.Loss = &loss
		}
		if r.Kind == measure.KindIdentity || r.Kind == measure.KindDNS {
			row.State, row.Site, row.Identity = collector.Classify(nil, r)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := st.IngestBatch(cctx, []collector.Row{row}); err != nil {
			b, _ := json.Marshal(r)
			if errors.Is(err, collector.ErrRowData) {
				t.Fatalf("validated line refused by PostgreSQL: %v\nline: %q\nresult: %s", err, line, b)
			}
			t.Fatalf("ingest: %v\nline: %q", err, line)
		}
	})
}
