package site

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/internal/netnstest"
	"github.com/anycatch/anycatch/measure"
)

// netnsSite builds a two-namespace network: NS[0] is an anycast site with
// anycast4/anycast6 on lo, NS[1] answers echo requests for every address
// in 198.18.0.0/16 and 2001:db8:ffff::/48 (local routes) and routes
// replies to the anycast addresses back to NS[0].
func netnsSite(t *testing.T) (*netnstest.Chain, netip.Addr, netip.Addr) {
	t.Helper()
	c := netnstest.NewChain(t, 2, netnstest.Options{Prefix: "acsite"})
	a4, a6 := netip.MustParseAddr("198.19.53.53"), netip.MustParseAddr("2001:db8:53::53")
	for _, args := range [][]string{
		{"-n", c.NS[0], "addr", "add", a4.String() + "/32", "dev", "lo"},
		{"-n", c.NS[0], "-6", "addr", "add", a6.String() + "/128", "dev", "lo", "nodad"},
		{"-n", c.NS[1], "route", "add", a4.String() + "/32", "via", c.Hop4[0].String()},
		{"-n", c.NS[1], "-6", "route", "add", a6.String() + "/128", "via", c.Hop6[0].String()},
		{"-n", c.NS[1], "route", "add", "local", "198.18.0.0/16", "dev", "lo"},
		{"-n", c.NS[1], "-6", "route", "add", "local", "2001:db8:ffff::/48", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	return c, a4, a6
}

// TestRawSocketFilter: the capture socket, opened in the site's namespace,
// passes census echo replies and nothing else (the kernel's own echo
// replies to other pings, echo requests to the anycast address).
func TestRawSocketFilter(t *testing.T) {
	c, a4, a6 := netnsSite(t)
	secret := []byte("0123456789abcdef")
	for _, tc := range []struct {
		anycast, dst netip.Addr
		ping         []string
	}{
		{a4, netip.MustParseAddr("198.18.7.9"), []string{"ping", "-c", "2", "-i", "0.2", "-I", a4.String(), "198.18.7.9"}},
		{a6, netip.MustParseAddr("2001:db8:ffff::77"), []string{"ping", "-6", "-c", "2", "-i", "0.2", "-I", a6.String(), "2001:db8:ffff::77"}},
	} {
		t.Run(tc.anycast.String(), func(t *testing.T) {
			conn, err := listenRaw(tc.anycast, c.NS[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Plain pings from the anycast address (echo replies without
			// the census magic) and to it (echo requests): filtered out.
			if out, err := exec.Command("ip", append([]string{"netns", "exec", c.NS[0]}, tc.ping...)...).CombinedOutput(); err != nil {
				t.Fatalf("ping: %v\n%s", err, out)
			}
			back := []string{"ping", "-c", "2", "-i", "0.2", tc.anycast.String()}
			if out, err := exec.Command("ip", append([]string{"netns", "exec", c.NS[1]}, back...)...).CombinedOutput(); err != nil {
				t.Fatalf("ping the anycast address: %v\n%s", err, out)
			}
			buf := make([]byte, 1500)
			conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if n, from, err := conn.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the filter passed %d bytes from %s (%x), err %v", n, from, buf[:n], err)
			}
			// A census probe: its reply passes, verifiably.
			now := time.Now()
			pkt, err := echoRequest(tc.anycast.Is6(), 4242, 1, census.Payload(secret, census.SiteKey(secret), census.Probe{Round: 5, Sent: now}, tc.dst, "test"))
			if err != nil {
				t.Fatal(err)
			}
			if err := conn.WriteTo(pkt, tc.dst); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no census reply: %v", err)
			}
			payload, ok := parseEchoReply(tc.anycast.Is6(), buf[:n])
			if !ok || from != tc.dst {
				t.Fatalf("got %x from %s", buf[:n], from)
			}
			if p, _, err := census.Verify(census.SiteKey(secret), payload, from); err != nil || p.Round != 5 {
				t.Fatalf("reply payload: %+v %v", p, err)
			}
		})
	}
}

// TestRoundOverRawSockets runs whole rounds through real raw sockets in a
// namespace at two rates and records the measured send rate: it must not
// exceed the configured rate, and every probed address must be reported.
func TestRoundOverRawSockets(t *testing.T) {
	c, a4, a6 := netnsSite(t)
	for _, tc := range []struct {
		pps, n4, n6 int
	}{
		{1000, 800, 200},
		{census.HardMaxPPS, 4000, 1000},
	} {
		t.Run(fmt.Sprint(tc.pps), func(t *testing.T) {
			dir := t.TempDir()
			var b strings.Builder
			for i := range tc.n4 {
				fmt.Fprintf(&b, "198.18.%d.%d\n", i/250, 1+i%250)
			}
			for i := range tc.n6 {
				fmt.Fprintf(&b, "2001:db8:ffff::%x\n", i+1)
			}
			os.MkdirAll(filepath.Join(dir, "hitlists"), 0o755)
			os.WriteFile(filepath.Join(dir, "hitlists", "many"), []byte(b.String()), 0o644)
			now := time.Now()
			round := measure.CensusRound{ID: 3, Sender: "ams", Hitlist: "many", RatePPS: tc.pps, Prefix4: 32, Prefix6: 128,
				Secret: []byte("0123456789abcdef"), Start: now.Add(-SenderDelay), Closes: now.Add(time.Minute), LateUntil: now.Add(time.Hour)}
			fc, url := newFakeCollector(t, round)
			fc.addr4, fc.addr6, fc.maxPPS = a4.String(), a6.String(), census.HardMaxPPS
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := Config{Collector: url, StateDir: dir, EnrollToken: "acs_ams", MaxPPS: census.HardMaxPPS, Netns: c.NS[0]}
			done := startAgent(t, ctx, cfg)
			want := tc.n4 + tc.n6
			waitFor(t, "the round record", 60*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(dir, "rounds", "3.json"))
				return err == nil
			})
			// Replies are in; give the spooler and uploader a moment.
			deadline := time.Now().Add(20 * time.Second)
			for len(fc.got()["ams"]) < want && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			cancel()
			<-done
			var st RoundStats
			raw, _ := os.ReadFile(filepath.Join(dir, "rounds", "3.json"))
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			got := len(fc.got()["ams"])
			t.Logf("SEND RATE %d/s configured: %d probes in %s, measured %.1f/s; %d of %d replies reported",
				st.ConfiguredPPS, st.Sent, st.Finished.Sub(st.Started).Round(time.Millisecond), st.MeasuredPPS, got, want)
			if st.Sent != want || st.SendErrors != 0 {
				t.Errorf("sent %d (%d errors), want %d", st.Sent, st.SendErrors, want)
			}
			if st.MeasuredPPS > float64(tc.pps)*1.01 {
				t.Errorf("measured %.1f/s, above the configured %d/s", st.MeasuredPPS, tc.pps)
			}
			// A loaded machine may drop a few replies in socket buffers;
			// losing more means the capture path is broken.
			if got < want*99/100 {
				t.Errorf("%d of %d replies reported", got, want)
			}
		})
	}
}
