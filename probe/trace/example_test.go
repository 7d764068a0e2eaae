package trace_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/trace"
)

// Trace the route to a loopback address: the destination answers at the
// first hop.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := trace.Run(ctx, netip.MustParseAddr("127.0.0.1"), measure.TraceSpec{Proto: "udp"}, trace.Options{})
	if err != nil {
		fmt.Println("cannot trace:", err)
		return
	}
	fmt.Println("reached:", res.Reached, "hops:", len(res.Hops))
	for _, h := range res.Hops {
		fmt.Println(h.TTL, h.Probes[0].From)
	}
	// Output:
	// reached: true hops: 1
	// 1 127.0.0.1
}
