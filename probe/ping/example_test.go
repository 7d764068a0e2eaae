package ping_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/ping"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := ping.Run(ctx, netip.MustParseAddr("127.0.0.1"), measure.PingSpec{Count: 3, IntervalMS: 200}, ping.Options{})
	if err != nil {
		fmt.Println("cannot ping:", err) // no socket at all; loss would be in res
		return
	}
	fmt.Printf("%s: %d/%d received\n", res.Mode, res.Received, res.Sent)
}
