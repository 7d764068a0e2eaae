package dns

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/anycatch/anycatch/measure"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz seed corpora")

// fuzzQuery is the question every fuzz reply answers.
var fuzzQuery = query{name: "hostname.bind.", qtype: mdns.TypeTXT, qclass: mdns.ClassCHAOS, nsid: true, udpSize: 1232, timeout: time.Second}

// seeds are replies worth starting from, each with why it is interesting.
func seeds() map[string][]byte {
	reply := func(edit func(m *mdns.Msg)) []byte {
		m := new(mdns.Msg)
		m.Id = 0x1234
		m.Response, m.Authoritative = true, true
		m.Question = []mdns.Question{{Name: "hostname.bind.", Qtype: mdns.TypeTXT, Qclass: mdns.ClassCHAOS}}
		m.Answer = []mdns.RR{&mdns.TXT{Hdr: mdns.RR_Header{Name: "hostname.bind.", Rrtype: mdns.TypeTXT, Class: mdns.ClassCHAOS}, Txt: []string{"ams1"}}}
		o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
		o.Option = []mdns.EDNS0{&mdns.EDNS0_NSID{Code: mdns.EDNS0NSID, Nsid: "616d73310a"}}
		m.Extra = []mdns.RR{o}
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			panic(err)
		}
		return b
	}
	good := reply(nil)
	ptrLoop := append([]byte(nil), good[:12]...)
	ptrLoop = append(ptrLoop, 0xc0, 12, 0, 16, 0, 3) // question name points at itself
	return map[string][]byte{
		"good-chaos-nsid": good,                                                                                                      // a normal identity answer with NSID
		"refused-header":  reply(func(m *mdns.Msg) { m.Rcode = mdns.RcodeRefused; m.Question = nil; m.Answer = nil; m.Extra = nil }), // header only
		"truncated-cut":   append(reply(func(m *mdns.Msg) { m.Truncated = true }), 0)[:30],                                           // TC with a body cut mid-record
		"multi-txt":       reply(func(m *mdns.Msg) { m.Answer[0].(*mdns.TXT).Txt = []string{"a\"b", "\x00\xff", ""} }),
		"wrong-question":  reply(func(m *mdns.Msg) { m.Question[0].Name = "id.server." }),
		"pointer-loop":    ptrLoop,
		"runt":            {0x12, 0x34, 0x84},
		"ancount-lies":    func() []byte { b := append([]byte(nil), good...); b[7] = 200; return b }(),
		"extended-rcode":  reply(func(m *mdns.Msg) { m.Extra[0].(*mdns.OPT).SetExtendedRcode(mdns.RcodeBadVers) }),
		"unknown-rr-type": reply(func(m *mdns.Msg) {
			m.Answer = append(m.Answer, &mdns.RFC3597{Hdr: mdns.RR_Header{Name: "hostname.bind.", Rrtype: 65280, Class: mdns.ClassCHAOS}, Rdata: "0102"})
		}),
	}
}

// TestWriteFuzzSeeds regenerates the committed seed corpora (-write-seeds).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("pass -write-seeds to regenerate testdata/fuzz")
	}
	for _, target := range []string{"FuzzDecodeReply", "FuzzTCPReply"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds() {
			if target == "FuzzTCPReply" {
				b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkExchange asserts the invariants every decoded exchange must keep,
// whatever the reply held.
func checkExchange(t *testing.T, ex measure.DNSExchange) {
	t.Helper()
	if len(ex.Answers) > measure.MaxAnswers || len(ex.Raw) > measure.MaxDNSRawBytes {
		t.Fatalf("unbounded exchange: %d answers, %d raw bytes", len(ex.Answers), len(ex.Raw))
	}
	if (ex.Error == "") == (ex.Rcode == "") {
		t.Fatalf("exactly one of error %q and rcode %q must be set", ex.Error, ex.Rcode)
	}
	if len(ex.NSIDHex)%2 != 0 {
		t.Fatalf("odd nsid hex %q", ex.NSIDHex)
	}
	id := IdentityOf([]measure.DNSExchange{ex})
	if len(id.HostnameBind)+len(id.IDServer)+len(id.NSID) > measure.MaxIdentityBytes {
		t.Fatalf("identity too long: %+v", id)
	}
	if _, err := json.Marshal(ex); err != nil {
		t.Fatalf("marshal: %v", err)
	}
}

// FuzzDecodeReply feeds arbitrary bytes to the reply check and decoder as
// if they had arrived on the query's socket with a matching id.
func FuzzDecodeReply(f *testing.F) {
	for _, b := range seeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ids := []uint16{0x1234}
		if len(raw) >= 2 {
			ids = append(ids, binary.BigEndian.Uint16(raw))
		}
		q := fuzzQuery
		v, m, why, try := check(raw, ids, &q)
		ex := measure.DNSExchange{QName: q.name, QClass: "CH", QType: "TXT"}
		switch v {
		case accept:
			if m == nil || why != "" || try < 0 {
				t.Fatalf("accept without message (%q, try %d)", why, try)
			}
			fill(&ex, outcome{raw: raw, msg: m})
		default:
			if m != nil || why == "" {
				t.Fatalf("verdict %d with message %v, reason %q", v, m != nil, why)
			}
			fill(&ex, outcome{raw: raw, err: why})
		}
		checkExchange(t, ex)
	})
}

// FuzzTCPReply runs the whole TCP exchange against a peer that reads the
// query and then writes the fuzz bytes as its side of the stream (frame
// length included), rewriting the reply id to match when there is one.
func FuzzTCPReply(f *testing.F) {
	for _, b := range seeds() {
		f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer server.Close()
			server.SetDeadline(time.Now().Add(2 * time.Second))
			var lb [2]byte
			if _, err := io.ReadFull(server, lb[:]); err != nil {
				return
			}
			q := make([]byte, binary.BigEndian.Uint16(lb[:]))
			if _, err := io.ReadFull(server, q); err != nil || len(q) < 2 {
				return
			}
			out := append([]byte(nil), stream...)
			if len(out) >= 4 {
				copy(out[2:4], q[:2])
			}
			server.Write(out)
		}()
		opt := Options{Dial: func(context.Context, string, string) (net.Conn, error) { return client, nil }}
		q := fuzzQuery
		q.timeout = 200 * time.Millisecond
		out, err := tcpExchange(context.Background(), netip.MustParseAddrPort("127.0.0.1:53"), q, &opt)
		client.Close()
		<-done
		if err != nil {
			t.Fatalf("tcpExchange: %v", err)
		}
		ex := measure.DNSExchange{}
		fill(&ex, out)
		checkExchange(t, ex)
	})
}
