package lab_test

import (
	"context"
	"fmt"
	"log"

	"github.com/anycatch/anycatch/lab"
)

// An end-to-end test brings a lab up, runs something in a client, moves
// the catchment and reads the ground truth. Needs root.
func Example() {
	ctx := context.Background()
	l, err := lab.Up(ctx, lab.DefaultTopology(), lab.Options{Name: "e2e"})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Down(ctx)

	// Probes in clients reach a collector on the host's 127.0.0.1:8080
	// at http://198.19.255.1:8080.
	collector, err := l.ForwardCollector(ctx, 8080)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("collector:", collector)

	c := l.Clients()[0]
	out, err := l.Exec(ctx, c.Name, "dig", "+short", "@"+l.AnycastV4().String(), "hostname.bind", "CH", "TXT")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%s) sees %s", c.Name, c.Region, out)

	if err := l.Withdraw(ctx, "ams"); err != nil {
		log.Fatal(err)
	}
	truth, err := l.Truth(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, ct := range truth.Clients {
		fmt.Println(ct.Client, "->", ct.V4.Site, ct.V4.ExpectedRTT)
	}
}
