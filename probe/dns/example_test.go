package dns_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/dns"
)

// Identify which instance of an anycast DNS service answers. (Not run:
// the address is a documentation prefix.)
func ExampleIdentity() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := netip.MustParseAddrPort("198.51.100.53:53")
	res, err := dns.Identity(ctx, server, measure.DNSSpec{TimeoutMS: 1000, Retries: 1}, dns.Options{})
	if err != nil {
		fmt.Println("could not measure:", err)
		return
	}
	fmt.Printf("hostname.bind=%q id.server=%q nsid=%q\n",
		res.Identity.HostnameBind, res.Identity.IDServer, res.Identity.NSID)
	for _, ex := range res.Exchanges {
		fmt.Println(ex.QName, ex.Rcode, ex.Error, ex.RTT)
	}
}

// Ask one question of any class and type, over TCP.
func ExampleQuery() {
	ctx := context.Background()
	spec := measure.DNSSpec{QName: "example.com.", QClass: "IN", QType: "SOA", Proto: "tcp"}
	res, err := dns.Query(ctx, netip.MustParseAddrPort("198.51.100.53:53"), spec, dns.Options{})
	if err != nil {
		fmt.Println("could not measure:", err)
		return
	}
	ex := res.Exchanges[0]
	fmt.Println(ex.Rcode, len(ex.Answers), ex.Error)
}
