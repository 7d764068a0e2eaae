package ping

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/internal/netnstest"
	"github.com/anycatch/anycatch/measure"
)

// TestHelperUnprivileged is not a test: the namespace tests run the test
// binary as an unprivileged user with this function selected and read
// the result it prints.
func TestHelperUnprivileged(t *testing.T) {
	dst := os.Getenv("ANYCATCH_PING_HELPER_DST")
	if dst == "" {
		t.Skip("helper process only")
	}
	res, err := Run(context.Background(), netip.MustParseAddr(dst), measure.PingSpec{Count: 3, IntervalMS: 10, TimeoutMS: 1000}, Options{})
	out, _ := json.Marshal(struct {
		Detect string
		Res    *measure.PingResult
		Err    string
	}{Detect(), res, fmt.Sprint(err)})
	fmt.Printf("RESULT:%s\n", out)
}

func TestNamespaceUnprivilegedDgram(t *testing.T) {
	c := netnstest.NewChain(t, 3, netnstest.Options{UnprivilegedPing: true})
	bin := netnstest.SelfForOthers(t)
	for _, dst := range []netip.Addr{c.Dst4, c.Dst6} {
		t.Run(dst.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := c.CommandAs(ctx, 0, 65534, bin, "-test.run=^TestHelperUnprivileged$")
			cmd.Env = append(os.Environ(), "ANYCATCH_PING_HELPER_DST="+dst.String())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			var got struct {
				Detect string
				Res    *measure.PingResult
				Err    string
			}
			_, line, ok := strings.Cut(string(out), "RESULT:")
			if !ok {
				t.Fatalf("helper printed no result:\n%s", out)
			}
			line, _, _ = strings.Cut(line, "\n")
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatal(err)
			}
			if got.Detect != ModeDgram || got.Err != "<nil>" || got.Res.Mode != ModeDgram || got.Res.Received != 3 {
				t.Fatalf("as uid 65534: got detect %q err %s result %+v, want dgram with 3/3", got.Detect, got.Err, got.Res)
			}
			if got.Res.Replies[0].TTL != 63 {
				t.Errorf("got reply ttl %d, want 63 (one router)", got.Res.Replies[0].TTL)
			}
		})
	}
}

// Raw mode through a router, run inside the source namespace.
func TestNamespaceRaw(t *testing.T) {
	c := netnstest.NewChain(t, 3, netnstest.Options{})
	for _, dst := range []netip.Addr{c.Dst4, c.Dst6} {
		var res *measure.PingResult
		var err error
		c.Do(t, 0, func() {
			res, err = Run(context.Background(), dst, measure.PingSpec{Count: 3, IntervalMS: 10}, Options{})
		})
		if err != nil || res.Mode != ModeRaw || res.Received != 3 || res.Replies[0].TTL != 63 {
			t.Errorf("%v: got %+v, %v; want raw 3/3 ttl 63", dst, res, err)
		}
	}
}
