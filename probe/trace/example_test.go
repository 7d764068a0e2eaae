package trace_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/trace"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := trace.Run(ctx, netip.MustParseAddr("198.18.0.1"), measure.TraceSpec{Proto: "udp"}, trace.Options{})
	if err != nil {
		fmt.Println("cannot trace:", err)
		return
	}
	for _, h := range res.Hops {
		fmt.Println(h.TTL, h.Probes[0].From, h.Probes[0].RTT)
	}
}
