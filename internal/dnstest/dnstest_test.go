package dnstest_test

import (
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/anycatch/anycatch/internal/dnstest"
)

func TestServer(t *testing.T) {
	s := dnstest.StartServer(t, dnstest.Config{DropFirst: 1, Hostname: "fra2"})
	q := new(mdns.Msg)
	q.SetQuestion("hostname.bind.", mdns.TypeTXT)
	q.Question[0].Qclass = mdns.ClassCHAOS
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &mdns.EDNS0_NSID{Code: mdns.EDNS0NSID})
	c := &mdns.Client{Timeout: 200 * time.Millisecond}
	if _, _, err := c.Exchange(q, s.Addr.String()); err == nil {
		t.Fatal("first query answered, want dropped")
	}
	r, _, err := c.Exchange(q, s.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*mdns.TXT).Txt[0] != "fra2" {
		t.Errorf("answer = %v, want fra2", r.Answer)
	}
	nsid := r.IsEdns0().Option[0].(*mdns.EDNS0_NSID).Nsid
	if nsid != "616d73312d6e7331" { // hex of DefaultNSID
		t.Errorf("nsid = %s", nsid)
	}
	c.Net = "tcp"
	if _, _, err := c.Exchange(q, s.Addr.String()); err != nil {
		t.Errorf("tcp on the same port: %v", err)
	}
	if total, udp, tcp := s.Queries(); total != 3 || udp != 2 || tcp != 1 {
		t.Errorf("queries %d (udp %d, tcp %d), want 3 (2, 1)", total, udp, tcp)
	}
}
