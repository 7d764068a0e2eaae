package dns_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/anycatch/anycatch/internal/dnstest"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/dns"
)

// Identify which instance of an anycast DNS service answers. The server
// here is a stand-in on loopback that names itself as an instance in
// Amsterdam would.
func ExampleIdentity() {
	srv, stop, err := dnstest.Listen(dnstest.Config{Hostname: "ns1.ams.example", IDServer: "ams1", NSID: "ams1-ns1"})
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := dns.Identity(ctx, srv.Addr, measure.DNSSpec{TimeoutMS: 1000, Retries: 1}, dns.Options{})
	if err != nil {
		fmt.Println("could not measure:", err)
		return
	}
	fmt.Printf("hostname.bind=%q id.server=%q nsid=%q\n",
		res.Identity.HostnameBind, res.Identity.IDServer, res.Identity.NSID)
	for _, ex := range res.Exchanges {
		fmt.Println(ex.QName, ex.Rcode) // ex.Error says why an exchange failed
	}
	// Output:
	// hostname.bind="ns1.ams.example" id.server="ams1" nsid="ams1-ns1"
	// hostname.bind. NOERROR
	// id.server. NOERROR
}

// Ask one question of any class and type, over TCP.
func ExampleQuery() {
	srv, stop, err := dnstest.Listen(dnstest.Config{Records: []string{
		"example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300"}})
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	spec := measure.DNSSpec{QName: "example.test.", QClass: "IN", QType: "SOA", Proto: "tcp"}
	res, err := dns.Query(context.Background(), srv.Addr, spec, dns.Options{})
	if err != nil {
		fmt.Println("could not measure:", err)
		return
	}
	ex := res.Exchanges[0]
	fmt.Println(ex.Proto, ex.Rcode, len(ex.Answers), ex.Answers[0].Type)
	// Output: tcp NOERROR 1 SOA
}
