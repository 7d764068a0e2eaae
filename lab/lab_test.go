package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// upTestLab brings up topo under a per-process instance name and tears it
// down in t.Cleanup, failing the test if any namespace or recorded process
// survives.
func upTestLab(t *testing.T, topo *Topology, suffix string) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests need root (network namespaces): run as root, e.g. sudo go test ./lab/...")
	}
	if err := Preflight(); err != nil {
		t.Fatalf("preflight: %v", err)
	}
	name := fmt.Sprintf("t%05x%s", os.Getpid()&0xfffff, suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	l, err := Up(ctx, topo, Options{Name: name, Log: tlogWriter{t}})
	if err != nil {
		_ = Down(context.Background(), Options{Name: name})
		t.Fatalf("up: %v", err)
	}
	t.Logf("lab %s up in %v", name, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		st, _ := l.Status(context.Background())
		start := time.Now()
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
		t.Logf("lab %s down in %v", name, time.Since(start).Round(time.Millisecond))
		if ns := namespacesWithPrefix(name + "-"); len(ns) > 0 {
			t.Errorf("namespaces left behind: %v", ns)
		}
		for _, p := range st.Procs {
			if procAlive(p.PID) {
				t.Errorf("%s %s pid %d still alive", p.Role, p.Node, p.PID)
			}
		}
		if pids := daemonPIDs(name); len(pids) > 0 {
			t.Errorf("daemons left behind: %v", pids)
		}
		if _, err := os.Stat(l.StateDir()); err == nil {
			t.Errorf("state dir %s left behind", l.StateDir())
		}
	})
	return l
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var (
	digStatusRE = regexp.MustCompile(`status: ([A-Z]+)`)
	digNSIDRE   = regexp.MustCompile(`; NSID: [0-9a-f ]+ \("([^"]*)"\)`)
	digTXTRE    = regexp.MustCompile(`(?m)^hostname\.bind\.\s+\d+\s+CH\s+TXT\s+"([^"]*)"`)
)

// digIdentity asks the anycast address from inside client's namespace with
// dig, the way an operator would.
func digIdentity(ctx context.Context, l *Lab, client string, server netip.Addr) (Identity, error) {
	out, err := l.Exec(ctx, client, "dig", "+time=1", "+tries=2", "@"+server.String(), "hostname.bind", "CH", "TXT", "+nsid")
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s", err, out)
	}
	var id Identity
	if m := digStatusRE.FindSubmatch(out); m != nil {
		id.Rcode = string(m[1])
	}
	if m := digNSIDRE.FindSubmatch(out); m != nil {
		id.NSID = string(m[1])
	}
	if m := digTXTRE.FindSubmatch(out); m != nil {
		id.Hostname = string(m[1])
	}
	return id, nil
}

// siteOf maps a reply to a site; a reply with neither hostname nor NSID
// maps to the one site configured to say nothing.
func siteOf(topo *Topology, id Identity) string {
	if s := topo.SiteForIdentity(id); s != "" {
		return s
	}
	var silent []string
	for _, s := range topo.Sites {
		if s.HideIdentity && s.NSID == "" {
			silent = append(silent, s.Code)
		}
	}
	if id.Hostname == "" && id.NSID == "" && len(silent) == 1 {
		return silent[0]
	}
	return ""
}

func TestLab(t *testing.T) {
	t.Parallel() // alongside TestLabSmall: two instances must not collide
	l := upTestLab(t, nil, "d")
	topo := l.Topology()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	truth, err := l.Truth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range truth.Clients {
		t.Logf("truth: %-5s v4 %-4s %-6v %v  v6 %-4s %v", c.Client, c.V4.Site, c.V4.ExpectedRTT, c.V4.Forward, c.V6.Site, c.V6.ExpectedRTT)
	}

	t.Run("Up refuses a second instance of the same name", func(t *testing.T) {
		_, err := Up(ctx, nil, Options{Name: l.Name()})
		if err == nil || !strings.Contains(err.Error(), ErrExists.Error()) {
			t.Fatalf("got %v, want ErrExists", err)
		}
	})

	t.Run("extra client networks reach the anycast service", func(t *testing.T) {
		n := 0
		for _, c := range l.Clients() {
			for _, src := range append(c.Extra4, c.Extra6...) {
				dst := l.AnycastV4()
				if src.Is6() {
					dst = l.AnycastV6()
				}
				if out, err := l.Exec(ctx, c.Name, "ping", "-c", "1", "-W", "3", "-I", src.String(), dst.String()); err != nil {
					t.Errorf("%s: ping %s from %s: %v\n%s", c.Name, dst, src, err, out)
				}
				n++
			}
		}
		if want := 4 * len(l.Clients()); n != want {
			t.Errorf("%d extra networks, want %d (default topology: 3 nets per client)", n, want)
		}
	})

	t.Run("identity matches truth", func(t *testing.T) {
		for _, c := range truth.Clients {
			for _, f := range []struct {
				addr netip.Addr
				pt   PathTruth
			}{{l.AnycastV4(), c.V4}, {l.AnycastV6(), c.V6}} {
				id, err := digIdentity(ctx, l, c.Client, f.addr)
				if err != nil {
					t.Errorf("%s: %v", c.Client, err)
					continue
				}
				if got := siteOf(topo, id); got != f.pt.Site {
					t.Errorf("%s -> %s: reached %q (reply %+v), truth says %q", c.Client, f.addr, got, id, f.pt.Site)
				}
			}
		}
		// The identity styles really differ.
		want := map[string]Identity{
			"ams": {Rcode: "NOERROR", Hostname: "ams1.lab.anycatch.test", NSID: "ams1"},
			"sin": {Rcode: "NOERROR", Hostname: "ns1.sg-sin.lab"},
			"iad": {Rcode: "REFUSED", NSID: "iad-b2"},
			"gru": {Rcode: "REFUSED"},
		}
		for site, w := range want {
			got, err := l.QueryIdentity(ctx, site, l.AnycastV4())
			if err != nil || got != w {
				t.Errorf("%s answers %+v (%v), want %+v", site, got, err, w)
			}
		}
	})

	t.Run("ping RTT matches configured delays", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, c := range truth.Clients {
			for _, f := range []struct {
				addr netip.Addr
				pt   PathTruth
			}{{l.AnycastV4(), c.V4}, {l.AnycastV6(), c.V6}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := pingMin(ctx, l, c.Client, f.addr)
					if err != nil {
						t.Errorf("%s: %v", c.Client, err)
						return
					}
					want := f.pt.ExpectedRTT.D()
					// Each TUN hop adds ~0.1-0.3 ms of forwarding; allow a few ms.
					tol := 4*time.Millisecond + want/20
					t.Logf("%s -> %s (%s): rtt %v, expected %v", c.Client, f.addr, f.pt.Site, got, want)
					if got < want || got > want+tol {
						t.Errorf("%s -> %s: rtt %v, want %v (+%v)", c.Client, f.addr, got, want, tol)
					}
				}()
			}
		}
		wg.Wait()
	})

	t.Run("withdraw moves the catchment", func(t *testing.T) {
		c := truth.Clients[0]
		for _, x := range truth.Clients {
			if x.Client == "sao1" { // its site has a single, deterministic fallback
				c = x
			}
		}
		old := c.V4.Site
		start := time.Now()
		if err := l.Withdraw(ctx, old); err != nil {
			t.Fatal(err)
		}
		newSite, took := waitForSite(ctx, t, l, c.Client, func(s string) bool { return s != "" && s != old })
		t.Logf("withdraw %s: %s moved %s -> %s in %v", old, c.Client, old, newSite, took.Round(time.Millisecond))
		after, err := l.Truth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ct, _ := after.Client(c.Client); ct.V4.Site != newSite || ct.V6.Site == old {
			t.Errorf("after withdraw: dig says %s, truth says v4 %s v6 %s", newSite, ct.V4.Site, ct.V6.Site)
		}
		for _, x := range after.Clients {
			if x.V4.Site == old || x.V6.Site == old {
				t.Errorf("%s still routed to withdrawn %s", x.Client, old)
			}
		}
		if err := l.Restore(ctx, old); err != nil {
			t.Fatal(err)
		}
		_, took = waitForSite(ctx, t, l, c.Client, func(s string) bool { return s == old })
		t.Logf("restore %s: %s back in %v (whole cycle %v)", old, c.Client, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	})

	t.Run("collector forwarder", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "collector saw "+r.URL.Path)
		})}
		go srv.Serve(ln)
		defer srv.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		ap, err := l.ForwardCollector(ctx, port)
		if err != nil {
			t.Fatal(err)
		}
		if want := "198.19.255.1:" + strconv.Itoa(port); ap.String() != want {
			t.Errorf("forward address: got %s, want %s", ap, want)
		}
		for _, c := range l.Clients() {
			out, err := l.Exec(ctx, c.Name, "bash", "-c",
				fmt.Sprintf(`exec 3<>/dev/tcp/%s/%d; printf 'GET /v1/%s HTTP/1.0\r\n\r\n' >&3; timeout 5 cat <&3`, ap.Addr(), ap.Port(), c.Name))
			if err != nil || !strings.Contains(string(out), "collector saw /v1/"+c.Name) {
				t.Errorf("%s via %s: %v\n%s", c.Name, ap, err, out)
			}
		}
	})
}

// waitForSite polls dig from client until ok(site) and returns the site and
// how long it took (bounded by 15 s).
func waitForSite(ctx context.Context, t *testing.T, l *Lab, client string, ok func(string) bool) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 15*time.Second {
		id, err := digIdentity(ctx, l, client, l.AnycastV4())
		if s := siteOf(l.Topology(), id); err == nil && ok(s) {
			return s, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: catchment did not change within 15s", client)
	return "", 0
}

var pingMinRE = regexp.MustCompile(`= ([0-9.]+)/`)

// pingMin returns the minimum RTT of a few pings from inside client.
func pingMin(ctx context.Context, l *Lab, client string, dst netip.Addr) (time.Duration, error) {
	out, err := l.Exec(ctx, client, "ping", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "2", dst.String())
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, out)
	}
	m := pingMinRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no rtt in %q", out)
	}
	ms, err := strconv.ParseFloat(string(m[1]), 64)
	return time.Duration(ms * float64(time.Millisecond)), err
}

// TestLabSmall runs a second, different instance at the same time as
// TestLab and checks prepending, asymmetric delays and crash cleanup.
func TestLabSmall(t *testing.T) {
	t.Parallel()
	topo, err := LoadTopology("testdata/good_minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := upTestLab(t, topo, "s")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	truth, err := l.Truth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := truth.Client("lon1")
	// fra prepends twice, so lon1 reaches ams; 1ms access each way, 3ms
	// ams-bound and 7ms back.
	if c.V4.Site != "ams" || c.V6.Site != "ams" {
		t.Errorf("lon1: got sites %s/%s, want ams (fra is prepended)", c.V4.Site, c.V6.Site)
	}
	if got, want := c.V4.ExpectedRTT.D(), 12*time.Millisecond; got != want {
		t.Errorf("expected rtt: got %v, want %v", got, want)
	}
	got, err := pingMin(ctx, l, "lon1", l.AnycastV4())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lon1 -> ams asymmetric path: rtt %v, expected 12ms", got)
	if got < 12*time.Millisecond || got > 15*time.Millisecond {
		t.Errorf("rtt %v, want 12ms..15ms", got)
	}
	if err := l.Withdraw(ctx, "ams"); err != nil {
		t.Fatal(err)
	}
	site, took := waitForSite(ctx, t, l, "lon1", func(s string) bool { return s == "fra" })
	t.Logf("withdraw ams: lon1 moved to %s in %v", site, took.Round(time.Millisecond))
	if err := l.Withdraw(ctx, "nosuch"); err == nil {
		t.Error("withdraw of an unknown site: want error")
	}

	t.Run("down after a crash", func(t *testing.T) {
		// Lose the state file, as a crashed 'up' would: Down by name must
		// still find the namespaces and the daemons.
		if err := os.Remove(l.StateDir() + "/state.json"); err != nil {
			t.Fatal(err)
		}
		daemons := daemonPIDs(l.Name())
		if len(daemons) == 0 {
			t.Fatal("no delay daemons found by --instance")
		}
		if err := Down(ctx, Options{Name: l.Name()}); err != nil {
			t.Fatal(err)
		}
		if ns := namespacesWithPrefix(l.Name() + "-"); len(ns) > 0 {
			t.Errorf("namespaces left: %v", ns)
		}
		for _, pid := range daemons {
			if procAlive(pid) {
				t.Errorf("daemon %d alive", pid)
			}
		}
		if err := Down(ctx, Options{Name: l.Name()}); err != nil {
			t.Errorf("second down: %v", err)
		}
	})
}
