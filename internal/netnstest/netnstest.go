// Package netnstest builds throwaway Linux network namespaces for tests: a
// chain of namespaces joined by veth links with addresses, routes and
// forwarding, and ways to run code or commands inside one of them.
//
// It never touches the host namespace's addresses or routes. Link networks
// come from 100.64.0.0/10 and 2001:db8::/32, destination addresses from
// 198.18.0.0/15 and 2001:db8:ffff::/48. Everything is removed in
// t.Cleanup, also when the test fails. It needs root; [Require] skips
// otherwise.
package netnstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require skips t unless the process can create network namespaces.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netnstest: needs root to create network namespaces (skipped)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netnstest: iproute2 'ip' not found (skipped)")
	}
}

// Chain is namespaces NS[0] - NS[1] - ... - NS[n-1] in a line. NS[0] is the
// source host, NS[1..n-2] are routers and NS[n-1] is the destination host.
type Chain struct {
	NS []string
	// Hop4[i] / Hop6[i] is namespace i's address on its link toward NS[0]
	// (the address a router answers from); for i == 0 it is the source
	// address. Hop i is the TTL-i responder seen from NS[0].
	Hop4, Hop6 []netip.Addr
	// Dst4 / Dst6 live on the loopback of the last namespace.
	Dst4, Dst6 netip.Addr
}

// Options tunes a chain. The zero value is a plain chain with ICMP rate
// limits turned off (so repeated test traces are deterministic).
type Options struct {
	Prefix            string // namespace name prefix; "" means "ntest"
	KeepICMPRateLimit bool   // keep the kernel's default ICMP error rate limits (per destination and per namespace)
	// UnprivilegedPing sets net.ipv4.ping_group_range to "0 2147483647"
	// in every namespace so any user may open ICMP datagram sockets.
	UnprivilegedPing bool
}

// NewChain creates n >= 2 namespaces in a line. The last one holds the
// destination addresses on lo; every one in between forwards.
func NewChain(t testing.TB, n int, opt Options) *Chain {
	t.Helper()
	Require(t)
	if n < 2 || n > 200 {
		t.Fatalf("netnstest: chain of %d namespaces, want 2..200", n)
	}
	prefix := opt.Prefix
	if prefix == "" {
		prefix = "ntest"
	}
	var rb [4]byte
	rand.Read(rb[:])
	tag := prefix + "-" + hex.EncodeToString(rb[:])
	c := &Chain{
		Dst4: netip.MustParseAddr("198.18.0.1"),
		Dst6: netip.MustParseAddr("2001:db8:ffff::1"),
	}
	for i := range n {
		c.NS = append(c.NS, fmt.Sprintf("%s-%d", tag, i))
	}
	t.Cleanup(func() {
		for _, ns := range c.NS {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("netnstest: %q: %v: %s", args, err, bytes.TrimSpace(out))
		}
	}
	in := func(i int, args ...string) {
		t.Helper()
		run(append([]string{"ip", "netns", "exec", c.NS[i]}, args...)...)
	}
	v4 := func(link, side int) string { return fmt.Sprintf("100.64.%d.%d", link, side) }
	v6 := func(link, side int) string { return fmt.Sprintf("2001:db8:%x::%d", link+1, side) }
	for i, ns := range c.NS {
		run("ip", "netns", "add", ns)
		in(i, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
			"net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
		if !opt.KeepICMPRateLimit {
			in(i, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
				"net.ipv4.icmp_msgs_per_sec=100000", "net.ipv4.icmp_msgs_burst=10000")
		}
		if opt.UnprivilegedPing {
			in(i, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
		}
		run("ip", "-n", ns, "link", "set", "dev", "lo", "up")
	}
	// Link k joins NS[k] ("right", side .1) and NS[k+1] ("left", side .2).
	for k := 0; k < n-1; k++ {
		run("ip", "-n", c.NS[k], "link", "add", "right", "type", "veth", "peer", "name", "left", "netns", c.NS[k+1])
		run("ip", "-n", c.NS[k], "addr", "add", v4(k, 1)+"/24", "dev", "right")
		run("ip", "-n", c.NS[k+1], "addr", "add", v4(k, 2)+"/24", "dev", "left")
		run("ip", "-n", c.NS[k], "-6", "addr", "add", v6(k, 1)+"/64", "dev", "right", "nodad")
		run("ip", "-n", c.NS[k+1], "-6", "addr", "add", v6(k, 2)+"/64", "dev", "left", "nodad")
		run("ip", "-n", c.NS[k], "link", "set", "dev", "right", "up")
		run("ip", "-n", c.NS[k+1], "link", "set", "dev", "left", "up")
	}
	last := n - 1
	run("ip", "-n", c.NS[last], "addr", "add", c.Dst4.String()+"/32", "dev", "lo")
	run("ip", "-n", c.NS[last], "-6", "addr", "add", c.Dst6.String()+"/128", "dev", "lo", "nodad")
	// Routes: every link network not attached to NS[i] goes left or right.
	for i := range c.NS {
		for k := 0; k < n-1; k++ {
			switch {
			case k < i-1:
				run("ip", "-n", c.NS[i], "route", "add", fmt.Sprintf("100.64.%d.0/24", k), "via", v4(i-1, 1))
				run("ip", "-n", c.NS[i], "-6", "route", "add", fmt.Sprintf("2001:db8:%x::/64", k+1), "via", v6(i-1, 1))
			case k > i:
				run("ip", "-n", c.NS[i], "route", "add", fmt.Sprintf("100.64.%d.0/24", k), "via", v4(i, 2))
				run("ip", "-n", c.NS[i], "-6", "route", "add", fmt.Sprintf("2001:db8:%x::/64", k+1), "via", v6(i, 2))
			}
		}
		if i < last {
			run("ip", "-n", c.NS[i], "route", "add", "198.18.0.0/15", "via", v4(i, 2))
			run("ip", "-n", c.NS[i], "-6", "route", "add", "2001:db8:ffff::/48", "via", v6(i, 2))
		}
		if i == 0 {
			c.Hop4 = append(c.Hop4, netip.MustParseAddr(v4(0, 1)))
			c.Hop6 = append(c.Hop6, netip.MustParseAddr(v6(0, 1)))
		} else {
			c.Hop4 = append(c.Hop4, netip.MustParseAddr(v4(i-1, 2)))
			c.Hop6 = append(c.Hop6, netip.MustParseAddr(v6(i-1, 2)))
		}
	}
	c.waitReady(t)
	return c
}

// waitReady pings the far end until neighbour discovery has settled, so
// the first real measurement does not pay for ARP/ND (bounded: ~2 s).
func (c *Chain) waitReady(t testing.TB) {
	t.Helper()
	for _, dst := range []netip.Addr{c.Dst4, c.Dst6} {
		ok := false
		for range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := c.Command(ctx, 0, "ping", "-c1", "-W1", "-q", dst.String()).Run()
			cancel()
			if err == nil {
				ok = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !ok {
			t.Fatalf("netnstest: %s not reachable from %s", dst, c.NS[0])
		}
	}
}

// Command returns a command that runs inside namespace i.
func (c *Chain) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.NS[i], name}, args...)...)
}

// CommandAs returns a command that runs inside namespace i as uid/gid
// with no supplementary groups and no capabilities (via setpriv).
func (c *Chain) CommandAs(ctx context.Context, i, uid int, name string, args ...string) *exec.Cmd {
	id := strconv.Itoa(uid)
	return c.Command(ctx, i, "setpriv", append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", "--", name}, args...)...)
}

// SelfForOthers copies the running test binary where an unprivileged uid
// can execute it (test binaries live in root-only temp dirs) and returns
// its path. Use it with [Chain.CommandAs] and -test.run to run one test
// function as a helper process.
func SelfForOthers(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// t.TempDir makes a private parent too; open both for traversal.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.Base(self))
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Do runs f inside namespace i: on a dedicated OS thread switched into
// the namespace with setns(2). Sockets f opens belong to that namespace
// for their whole life, wherever they are used later. Goroutines f starts
// do not inherit the namespace, so f must open its sockets itself. f must
// not call t.FailNow; it runs on another goroutine.
func (c *Chain) Do(t testing.TB, i int, f func()) {
	t.Helper()
	if err := Do(c.NS[i], f); err != nil {
		t.Fatal(err)
	}
}

// Do runs f with the calling goroutine's view switched to the named
// namespace (see [Chain.Do]).
func Do(ns string, f func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// If restoring fails the thread stays locked and dies with this
		// goroutine, so no other goroutine ever runs in the namespace.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netnstest: open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netnstest: open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netnstest: setns %s: %w", ns, err)
			return
		}
		defer func() {
			if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		f()
		errc <- nil
	}()
	return <-errc
}
