package collector_test

import (
	"bufio"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
)

// vmRSSKiB reads this process's resident set size.
func vmRSSKiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS line")
	return 0
}

// slowBody opens a raw connection that declares an 8 MiB upload, sends
// one byte of it and then one byte every 5 s until the server closes the
// connection or stop closes. It reports on done when the server's side
// ended (answer read to EOF, or a reset).
func slowBody(t *testing.T, addr string, hdr http.Header, stop <-chan struct{}, done chan<- time.Time, wg *sync.WaitGroup) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("dial: %v", err)
		done <- time.Time{}
		return
	}
	var req strings.Builder
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n", measure.PathResults, 8<<20)
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n{")
	if _, err := conn.Write([]byte(req.String())); err != nil {
		t.Errorf("write request: %v", err)
	}
	wg.Add(2)
	go func() { // trickle: bounded by stop (the test's end)
		defer wg.Done()
		tk := time.NewTicker(5 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				conn.Close()
				return
			case <-tk.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		rd := bufio.NewReader(conn)
		buf := make([]byte, 4096)
		for {
			if _, err := rd.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					done <- time.Time{} // still open after 30 s: fails below
					return
				}
				done <- time.Now()
				return
			}
		}
	}()
}

// TestSlowBodyUnauthenticated is the regression test for issue 23's high
// finding: 200 connections with any probe id, a declared 8 MiB body and
// one byte every 5 s must not cost memory (< 50 MiB RSS growth; the old
// code preallocated the declared size and read before the signature: 1.6
// GiB) and must be closed within 15 s, while an honest probe's uploads
// keep committing.
func TestSlowBodyUnauthenticated(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 200 connections for up to 15 s")
	}
	e := newEnv(t, nil)
	honest := e.probe(t)
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	base := vmRSSKiB(t)

	// Sample RSS through the attack to catch the peak.
	var peak int64
	sampleStop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-sampleStop:
				return
			case <-tk.C:
				if r := vmRSSKiB(t); r > peak {
					peak = r
				}
			}
		}
	}()

	const conns = 200
	stop := make(chan struct{})
	done := make(chan time.Time, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		h := http.Header{}
		h.Set(measure.HeaderProbe, fmt.Sprintf("p-attacker-%d", i))
		if i%2 == 0 {
			// Half look signed (current timestamp, a well-formed nonce),
			// so the unknown probe id is what refuses them.
			h.Set(measure.HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
			h.Set(measure.HeaderNonce, fmt.Sprintf("%032x", i+1))
			h.Set(measure.HeaderSignature, "AAAA")
		}
		slowBody(t, addr, h, stop, done, &wg)
	}

	// The honest probe keeps committing during the attack.
	before := e.store.count()
	for i := range 20 {
		resp, ur := honest.upload([][]byte{line(t, pingResult("k-root/ping/4", "198.18.53.53", 4))}, i%2 == 0)
		if resp.StatusCode != http.StatusOK || ur.Accepted != 1 {
			t.Fatalf("honest upload %d during the attack: status %d, accepted %d", i, resp.StatusCode, ur.Accepted)
		}
	}
	if got := e.store.count() - before; got != 20 {
		t.Errorf("honest results committed during the attack: got %d, want 20", got)
	}

	var slowest time.Duration
	for range conns {
		at := <-done
		if at.IsZero() {
			t.Fatal("a slow-body connection was still open after 30 s")
		}
		slowest = max(slowest, at.Sub(start))
	}
	close(stop)
	wg.Wait()
	close(sampleStop)
	<-sampled
	grow := (peak - base) / 1024
	t.Logf("%d slow-body connections: all closed %.2f s after the first dial; RSS %d MiB -> peak %d MiB (+%d MiB)",
		conns, slowest.Seconds(), base/1024, peak/1024, grow)
	if slowest > 15*time.Second {
		t.Errorf("slowest connection closed after %s, want within 15 s", slowest.Round(time.Millisecond))
	}
	if grow >= 50 {
		t.Errorf("RSS grew by %d MiB, want < 50 MiB", grow)
	}
}

// TestBodyReadsCapped: a probe id known to an attacker (without its key)
// may hold at most MaxBodyReadsPer body reads at once; the rest are
// refused at once with 503 and Retry-After, and another probe is not
// affected.
func TestBodyReadsCapped(t *testing.T) {
	e := newEnv(t, func(c *collector.Config) { c.MaxBodyReadsPer = 2; c.MaxBodyReads = 3 })
	victim := e.probe(t)
	other := e.probe(t)
	addr := strings.TrimPrefix(e.srv.URL, "http://")

	stop := make(chan struct{})
	done := make(chan time.Time, 8)
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	hdr := func() http.Header {
		h := http.Header{}
		_, k, _ := ed25519.GenerateKey(nil) // not the victim's key
		measure.SignRequest(h, k, victim.id, http.MethodPost, measure.PathResults, nil, time.Now())
		return h
	}
	for range 2 {
		slowBody(t, addr, hdr(), stop, done, &wg)
	}
	// Wait until both reads hold their slots.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ := victim.do(http.MethodPost, measure.PathResults, []byte("{}"), nil)
		if resp.StatusCode == http.StatusServiceUnavailable {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("third body read of one probe id: got %d, want 503", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Another probe still gets the last global slot.
	resp, ur := other.upload([][]byte{line(t, pingResult("k-root/ping/4", "198.18.53.53", 4))}, false)
	if resp.StatusCode != http.StatusOK || ur.Accepted != 1 {
		t.Fatalf("other probe's upload: status %d, accepted %d, want 200, 1", resp.StatusCode, ur.Accepted)
	}
}

// TestRefusedBeforeBody: requests the headers alone refuse get their
// answer without the server waiting for the declared body.
func TestRefusedBeforeBody(t *testing.T) {
	e := newEnv(t, nil)
	p := e.probe(t)
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	stale := http.Header{}
	measure.SignRequest(stale, p.key, p.id, http.MethodPost, measure.PathResults, nil, time.Now().Add(-time.Hour))
	cases := map[string]http.Header{
		"no probe id":     {},
		"stale timestamp": stale,
		"unknown probe":   {measure.HeaderProbe: {"p-nobody"}, measure.HeaderTimestamp: {strconv.FormatInt(time.Now().Unix(), 10)}, measure.HeaderNonce: {strings.Repeat("ab", 16)}},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			stop := make(chan struct{})
			done := make(chan time.Time, 1)
			var wg sync.WaitGroup
			start := time.Now()
			slowBody(t, addr, h, stop, done, &wg)
			at := <-done
			close(stop)
			wg.Wait()
			if at.IsZero() || at.Sub(start) > 3*time.Second {
				t.Errorf("connection answered and closed after %v, want within 3 s", at.Sub(start))
			}
		})
	}
}
