package webhook

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// receiver is a loopback test server answering codes in turn (the last
// one repeats) and keeping what it got.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	codes []int
	got   []*http.Request
	body  [][]byte
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	rc := &receiver{codes: codes}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		code := rc.codes[min(len(rc.got), len(rc.codes)-1)]
		rc.got, rc.body = append(rc.got, r), append(rc.body, b)
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// fakeSleep records the backoff waits instead of waiting.
type fakeSleep struct{ waits []time.Duration }

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.waits = append(f.waits, d)
	return ctx.Err()
}

func TestDeliverRetriesThenSucceeds(t *testing.T) {
	rc := newReceiver(t, 500, 503, 200)
	fs := &fakeSleep{}
	s := New(Options{Sleep: fs.sleep})
	var log []Attempt
	err := s.Deliver(context.Background(), Request{URL: rc.URL, Secret: []byte("k"), AllowPrivate: true, Event: "firing", Body: []byte(`{}`)},
		func(a Attempt) { log = append(log, a) })
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	if len(log) != 3 || log[0].Status != 500 || log[1].Status != 503 || !log[2].OK || !log[2].Final || log[1].Final {
		t.Errorf("attempts %+v, want 500, 503, then 200 final", log)
	}
	if want := []time.Duration{2 * time.Second, 4 * time.Second}; len(fs.waits) != 2 || fs.waits[0] != want[0] || fs.waits[1] != want[1] {
		t.Errorf("backoff waits %v, want %v", fs.waits, want)
	}
	// Every retry carries the same delivery id so a receiver can dedupe.
	for _, r := range rc.got {
		if r.Header.Get(HeaderDelivery) != "0" || r.Header.Get(HeaderEvent) != "firing" {
			t.Errorf("headers %v", r.Header)
		}
	}
}

func TestDeliverGivesUpAfterMaxAttempts(t *testing.T) {
	rc := newReceiver(t, 500)
	fs := &fakeSleep{}
	s := New(Options{Sleep: fs.sleep, BaseDelay: time.Second, MaxDelay: 3 * time.Second})
	var log []Attempt
	err := s.Deliver(context.Background(), Request{URL: rc.URL, AllowPrivate: true, Body: []byte(`{}`), MaxAttempts: 4},
		func(a Attempt) { log = append(log, a) })
	if err == nil {
		t.Fatal("deliver to an always-500 receiver succeeded")
	}
	if len(rc.got) != 4 || len(log) != 4 {
		t.Fatalf("receiver got %d requests, log has %d attempts; want 4 each", len(rc.got), len(log))
	}
	last := log[3]
	if !last.Final || last.Status != 500 || !strings.Contains(last.Err, "500 Internal Server Error") || !strings.Contains(last.Err, "gave up after 4 attempts") {
		t.Errorf("last attempt %+v: want final, status 500 and why it gave up", last)
	}
	if err.Error() != last.Err {
		t.Errorf("error %q, want the last attempt's %q", err, last.Err)
	}
	// Backoff doubles and is capped.
	if want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}; !equalDurations(fs.waits, want) {
		t.Errorf("waits %v, want %v", fs.waits, want)
	}
}

func TestDeliverContinuesPriorAttempts(t *testing.T) {
	rc := newReceiver(t, 503)
	fs := &fakeSleep{}
	s := New(Options{Sleep: fs.sleep})
	var log []Attempt
	err := s.Deliver(context.Background(), Request{URL: rc.URL, AllowPrivate: true, Body: []byte(`{}`), MaxAttempts: 4, PriorAttempts: 2},
		func(a Attempt) { log = append(log, a) })
	if err == nil || len(log) != 2 || log[0].N != 3 || log[1].N != 4 || !strings.Contains(log[1].Err, "gave up after 4 attempts") {
		t.Errorf("err %v, attempts %+v: want attempts 3 and 4, then give up", err, log)
	}
	// The backoff continues too: after two earlier attempts the next wait is 8 s.
	if len(fs.waits) != 1 || fs.waits[0] != 8*time.Second {
		t.Errorf("waits %v, want [8s]", fs.waits)
	}
}

func TestDeliverDoesNotRetryClientErrors(t *testing.T) {
	rc := newReceiver(t, 410)
	s := New(Options{Sleep: (&fakeSleep{}).sleep})
	var n atomic.Int32
	err := s.Deliver(context.Background(), Request{URL: rc.URL, AllowPrivate: true, Body: []byte(`{}`)}, func(Attempt) { n.Add(1) })
	if err == nil || !strings.Contains(err.Error(), "not retried") || n.Load() != 1 {
		t.Errorf("err %v after %d attempts, want one attempt not retried", err, n.Load())
	}
}

func TestDeliverStopsWhenContextEnds(t *testing.T) {
	rc := newReceiver(t, 500)
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Options{Sleep: func(context.Context, time.Duration) error { cancel(); return context.Canceled }})
	var log []Attempt
	err := s.Deliver(ctx, Request{URL: rc.URL, AllowPrivate: true, Body: []byte(`{}`)}, func(a Attempt) { log = append(log, a) })
	if err == nil || len(log) != 1 || !log[0].Final || !strings.Contains(log[0].Err, "gave up: context canceled") {
		t.Errorf("err %v, log %+v: want one final attempt that says it gave up", err, log)
	}
}

// TestSignatureIndependent checks the signature with openssl (or Python's
// hmac module), not with this package's code.
func TestSignatureIndependent(t *testing.T) {
	rc := newReceiver(t, 204)
	secret := "s3cret-with-ünïcode"
	body := []byte(`{"status":"firing","alert":{"subject":"ams"}}`)
	s := New(Options{Now: func() time.Time { return time.Unix(1796300000, 0) }})
	if err := s.Deliver(context.Background(), Request{URL: rc.URL, Secret: []byte(secret), AllowPrivate: true, Event: "firing", DeliveryID: 77, Body: body}, nil); err != nil {
		t.Fatal(err)
	}
	r := rc.got[0]
	if r.Header.Get(HeaderDelivery) != "77" || r.Header.Get(HeaderEvent) != "firing" {
		t.Fatalf("headers %v", r.Header)
	}
	if got := r.Header.Get(HeaderTimestamp); got != "1796300000" {
		t.Fatalf("timestamp header %q", got)
	}
	signed := append([]byte(r.Header.Get(HeaderTimestamp)+"."+r.Header.Get(HeaderDelivery)+"."+r.Header.Get(HeaderEvent)+"."), rc.body[0]...)
	want := IndependentHMAC(t, secret, signed)
	if got := r.Header.Get(HeaderSignature); got != "sha256="+want {
		t.Errorf("signature %q, independent HMAC-SHA256 says sha256=%s", got, want)
	}
	// The delivery and event headers are covered: the old timestamp.body
	// text, or another event, does not verify.
	for _, other := range [][]byte{
		append([]byte(r.Header.Get(HeaderTimestamp)+"."), rc.body[0]...),
		append([]byte(r.Header.Get(HeaderTimestamp)+"."+r.Header.Get(HeaderDelivery)+".resolved."), rc.body[0]...),
		append([]byte(r.Header.Get(HeaderTimestamp)+".78."+r.Header.Get(HeaderEvent)+"."), rc.body[0]...),
	} {
		if IndependentHMAC(t, secret, other) == want {
			t.Errorf("signature also verifies %q", other)
		}
	}
	if !bytes.Equal(rc.body[0], body) {
		t.Errorf("body changed in transit: %q", rc.body[0])
	}
}

// IndependentHMAC computes hex HMAC-SHA256 with openssl or python3.
func IndependentHMAC(t testing.TB, key string, msg []byte) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", key, "-r")
		cmd.Stdin = bytes.NewReader(msg)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		return strings.Fields(string(out))[0]
	}
	if _, err := exec.LookPath("python3"); err == nil {
		cmd := exec.Command("python3", "-c", "import hmac,hashlib,sys;print(hmac.new(sys.argv[1].encode(),sys.stdin.buffer.read(),hashlib.sha256).hexdigest())", key)
		cmd.Stdin = bytes.NewReader(msg)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python3: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	t.Skip("neither openssl nor python3 to check the signature independently")
	return ""
}

func TestGuardRefusesLoopbackAtDialTime(t *testing.T) {
	rc := newReceiver(t, 200)
	s := New(Options{Sleep: (&fakeSleep{}).sleep})
	for _, u := range []string{rc.URL, strings.Replace(rc.URL, "127.0.0.1", "localhost", 1)} {
		var log []Attempt
		err := s.Deliver(context.Background(), Request{URL: u, Body: []byte(`{}`)}, func(a Attempt) { log = append(log, a) })
		if !errors.Is(err, ErrForbiddenAddress) && (err == nil || !strings.Contains(err.Error(), "not allowed for webhooks")) {
			t.Errorf("%s: err %v, want the address refused", u, err)
		}
		if len(log) != 1 {
			t.Errorf("%s: %d attempts, want 1 (a refused address is not retried)", u, len(log))
		}
	}
	if len(rc.got) != 0 {
		t.Errorf("the guarded sender reached the loopback receiver %d times", len(rc.got))
	}
	// The server-wide allow lets the same endpoint through.
	if err := New(Options{AllowPrivate: true}).Deliver(context.Background(), Request{URL: rc.URL, Body: []byte(`{}`)}, nil); err != nil {
		t.Errorf("with AllowPrivate: %v", err)
	}
}

func TestCheckAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80": false, "[::1]:443": false, "10.1.2.3:80": false, "172.16.0.1:80": false,
		"192.168.1.1:80": false, "169.254.169.254:80": false, "[fe80::1%eth0]:80": false, "0.0.0.0:80": false,
		"100.64.0.1:80": false, "198.18.53.53:80": false, "192.0.2.10:80": false, "[fd00::1]:80": false,
		"[2001:db8::1]:80": false, "[::ffff:127.0.0.1]:80": false, "224.0.0.1:80": false, "255.255.255.255:80": false,
		"not-an-ip:80": false,
		"8.8.8.8:443":  true, "[2a00:1450::1]:443": true, "1.1.1.1:80": true,
	} {
		if err := CheckAddr(addr); (err == nil) != ok {
			t.Errorf("CheckAddr(%s) = %v, want allowed=%v", addr, err, ok)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCheckAddrEmbeddedIPv4: the guard refuses addresses that carry a
// special IPv4 address (via measure.SpecialRange) and the NAT64 prefix.
func TestCheckAddrEmbeddedIPv4(t *testing.T) {
	for _, c := range []struct {
		name, addr string
		allowed    bool
	}{
		{"NAT64-embedded loopback", "[64:ff9b::7f00:1]:80", false},
		{"NAT64-embedded metadata", "[64:ff9b::a9fe:a9fe]:80", false},
		{"NAT64 global (stricter than probes)", "[64:ff9b::808:808]:443", false},
		{"NAT64 local-use", "[64:ff9b:1::1]:80", false},
		{"IPv4-compatible", "[::8.8.8.8]:80", false},
		{"IPv4-mapped private", "[::ffff:10.0.0.1]:80", false},
		{"IPv4-mapped global", "[::ffff:8.8.8.8]:443", true},
	} {
		err := CheckAddr(c.addr)
		if got := err == nil; got != c.allowed {
			t.Errorf("%s: CheckAddr(%s): got allowed=%v (%v), want allowed=%v", c.name, c.addr, got, err, c.allowed)
		}
		if err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: CheckAddr(%s): got %v, want ErrForbiddenAddress", c.name, c.addr, err)
		}
	}
}

// TestHostileReasonSanitized: a receiver on a raw TCP socket answers with
// NUL, control bytes, invalid UTF-8 and a huge reason phrase; the attempt's
// error (stored as last_error) is clean and short.
func TestHostileReasonSanitized(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_, _ = bufio.NewReader(c).ReadString('\n')
				reason := "Bad\x00Gate\x07way\x1b[31m\xff\xfe" + strings.Repeat("A", 5000)
				_, _ = io.WriteString(c, "HTTP/1.1 502 "+reason+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}(c)
		}
	}()
	s := New(Options{Sleep: (&fakeSleep{}).sleep})
	var log []Attempt
	_ = s.Deliver(context.Background(), Request{URL: "http://" + ln.Addr().String() + "/", AllowPrivate: true, Body: []byte(`{}`), MaxAttempts: 1}, func(a Attempt) { log = append(log, a) })
	if len(log) != 1 {
		t.Fatalf("%d attempts", len(log))
	}
	e := log[0].Err
	if !utf8.ValidString(e) || len(e) > 260 {
		t.Errorf("error not valid UTF-8 or too long (%d bytes): %q", len(e), e)
	}
	for _, r := range e {
		if unicode.IsControl(r) {
			t.Errorf("control character %U in %q", r, e)
		}
	}
	if !strings.Contains(e, "502") || !strings.Contains(e, "gave up") {
		t.Errorf("error %q lost the status or the outcome", e)
	}
	if got := Sanitize("ok\x00\xffé" + strings.Repeat("é", 300)); len(got) > 200 || !utf8.ValidString(got) || !strings.HasPrefix(got, "ok??é") {
		t.Errorf("Sanitize: %q", got)
	}
}
