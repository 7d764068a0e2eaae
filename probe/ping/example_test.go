package ping_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/ping"
)

// Ping a loopback address three times. Loss and timeouts are in the
// result; the error means no socket could be opened at all.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := ping.Run(ctx, netip.MustParseAddr("127.0.0.1"), measure.PingSpec{Count: 3, IntervalMS: 200}, ping.Options{})
	if err != nil {
		fmt.Println("cannot ping:", err) // no socket at all; loss would be in res
		return
	}
	fmt.Printf("%d/%d received, median RTT known: %v\n", res.Received, res.Sent, res.Median != nil)
	// Output: 3/3 received, median RTT known: true
}
