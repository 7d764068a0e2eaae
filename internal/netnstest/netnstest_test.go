package netnstest

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestChainReachable(t *testing.T) {
	c := NewChain(t, 4, Options{})
	if len(c.Hop4) != 4 || c.Hop4[1].String() != "100.64.0.2" || c.Hop6[3].String() != "2001:db8:3::2" {
		t.Fatalf("hops: got %v %v", c.Hop4, c.Hop6)
	}
	// A socket opened inside NS[0] reaches the destination; the same
	// address is unroutable from the host namespace.
	var err error
	c.Do(t, 0, func() {
		var conn net.Conn
		conn, err = net.DialTimeout("udp", net.JoinHostPort(c.Dst4.String(), "9"), time.Second)
		if err == nil {
			conn.Close()
		}
	})
	if err != nil {
		t.Fatalf("dial inside namespace: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := c.Command(ctx, 0, "ip", "route", "get", c.Dst6.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("route get: %v: %s", err, out)
	}
}
