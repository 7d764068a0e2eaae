package ping

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/internal/icmpwire"
)

// fakeConn is a simulated network on a simulated clock: each request
// written is answered by respond (replies land after their delay); a read
// with nothing due advances the clock to the deadline and times out.
type fakeConn struct {
	now      time.Time
	deadline time.Time
	queue    []fakePkt
	sent     [][]byte
	respond  func(c *fakeConn, req []byte, dst netip.Addr)
}

type fakePkt struct {
	at   time.Time
	b    []byte
	ttl  int
	from netip.Addr
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c *fakeConn) clock() time.Time { return c.now }

func (c *fakeConn) WriteTo(b []byte, dst netip.Addr) error {
	c.sent = append(c.sent, append([]byte(nil), b...))
	if c.respond != nil {
		c.respond(c, b, dst)
	}
	return nil
}

func (c *fakeConn) deliver(after time.Duration, from netip.Addr, ttl int, b []byte) {
	c.queue = append(c.queue, fakePkt{at: c.now.Add(after), b: b, ttl: ttl, from: from})
}

func (c *fakeConn) ReadFrom(b []byte) (int, int, netip.Addr, error) {
	best := -1
	for i, p := range c.queue {
		if best < 0 || p.at.Before(c.queue[best].at) {
			best = i
		}
	}
	if best < 0 || c.queue[best].at.After(c.deadline) {
		if c.deadline.After(c.now) {
			c.now = c.deadline
		}
		return 0, 0, netip.Addr{}, timeoutErr{}
	}
	p := c.queue[best]
	c.queue = append(c.queue[:best], c.queue[best+1:]...)
	if p.at.After(c.now) {
		c.now = p.at
	}
	return copy(b, p.b), p.ttl, p.from, nil
}

func (c *fakeConn) SetReadDeadline(t time.Time) error { c.deadline = t; return nil }
func (c *fakeConn) Close() error                      { return nil }

// echoReply turns a request into its reply (type 0/129, same body).
func echoReply(req []byte, v6 bool) []byte {
	r := append([]byte(nil), req...)
	r[0] = icmpwire.V4EchoReply
	if v6 {
		r[0] = icmpwire.V6EchoReply
	}
	return r
}

func seqOf(b []byte) uint16 { return binary.BigEndian.Uint16(b[6:]) }

var (
	dst4  = netip.MustParseAddr("198.18.0.1")
	other = netip.MustParseAddr("198.18.9.9")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func newRunner(c *fakeConn, spec measure.PingSpec) *runner {
	s := measure.Spec{Kind: measure.KindPing, Ping: &spec}.WithDefaults()
	return &runner{c: c, dst: dst4, spec: *s.Ping, mode: ModeRaw, id: 0x1234, now: c.clock}
}

func TestMatching(t *testing.T) {
	tests := []struct {
		name      string
		respond   func(c *fakeConn, req []byte, dst netip.Addr)
		received  int
		dups      int
		wantRTT   float64
		wantTTL   int
		wantElaps time.Duration
	}{
		{
			name: "all answered",
			respond: func(c *fakeConn, req []byte, dst netip.Addr) {
				c.deliver(10*time.Millisecond, dst, 61, echoReply(req, false))
			},
			received: 3, wantRTT: 10, wantTTL: 61, wantElaps: 2*time.Second + 10*time.Millisecond,
		},
		{
			name: "duplicates counted once",
			respond: func(c *fakeConn, req []byte, dst netip.Addr) {
				c.deliver(5*time.Millisecond, dst, 60, echoReply(req, false))
				c.deliver(7*time.Millisecond, dst, 60, echoReply(req, false))
			},
			// The run ends when every request is answered, so the last
			// request's duplicate (2 ms later) is not waited for.
			received: 3, dups: 2, wantRTT: 5, wantTTL: 60,
		},
		{
			name: "foreign and spoofed replies ignored",
			respond: func(c *fakeConn, req []byte, dst netip.Addr) {
				r := echoReply(req, false)
				c.deliver(time.Millisecond, other, 60, r) // right packet, wrong source
				bad := append([]byte(nil), r...)
				bad[5] ^= 1 // wrong id
				c.deliver(time.Millisecond, dst, 60, bad)
				bad = append([]byte(nil), r...)
				bad[9] ^= 0xff // wrong nonce
				c.deliver(time.Millisecond, dst, 60, bad)
				c.deliver(time.Millisecond, dst, 60, req)                   // our own request looped back
				c.deliver(time.Millisecond, dst, 60, r[:5])                 // truncated
				c.deliver(time.Millisecond, dst, 60, make([]byte, 65000))   // huge zero packet
				c.deliver(time.Millisecond, dst, 60, append(r[:8:8], 1, 2)) // payload shorter than nonce
				bad = append([]byte(nil), r...)
				binary.BigEndian.PutUint16(bad[6:], seqOf(r)+100) // never sent
				c.deliver(time.Millisecond, dst, 60, bad)
			},
			received: 0,
		},
		{
			name: "loss waits for the timeout after the last request",
			respond: func(c *fakeConn, req []byte, dst netip.Addr) {
				if len(c.sent) != 2 {
					c.deliver(3*time.Millisecond, dst, 60, echoReply(req, false))
				}
			},
			received: 2, wantRTT: 3, wantTTL: 60, wantElaps: 2*time.Second + 2*time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeConn{now: t0, respond: tt.respond}
			res, err := newRunner(c, measure.PingSpec{}).run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 3 || res.Received != tt.received || res.Duplicates != tt.dups {
				t.Fatalf("got sent %d received %d dups %d, want 3 %d %d", res.Sent, res.Received, res.Duplicates, tt.received, tt.dups)
			}
			if tt.received > 0 {
				if *res.Min != tt.wantRTT || *res.Median != tt.wantRTT || *res.Max != tt.wantRTT {
					t.Errorf("got min/median/max %v/%v/%v, want %v", *res.Min, *res.Median, *res.Max, tt.wantRTT)
				}
				if res.Replies[0].TTL != tt.wantTTL {
					t.Errorf("got ttl %d, want %d", res.Replies[0].TTL, tt.wantTTL)
				}
			} else if res.Min != nil || len(res.Replies) != 0 {
				t.Errorf("got stats/replies %v for no replies", res)
			}
			if tt.wantElaps > 0 && c.now.Sub(t0) != tt.wantElaps {
				t.Errorf("run took %v, want %v", c.now.Sub(t0), tt.wantElaps)
			}
			r := measure.Result{V: 1, ID: measure.NewUUIDv7(t0), Measurement: "m", Kind: measure.KindPing, Time: t0, Dst: dst4.String(), AF: 4, Ping: res}
			if err := r.Validate(t0); err != nil {
				t.Errorf("result does not validate: %v", err)
			}
		})
	}
}

func TestStats(t *testing.T) {
	delays := []time.Duration{40, 10, 30, 20}
	c := &fakeConn{now: t0}
	c.respond = func(c *fakeConn, req []byte, dst netip.Addr) {
		c.deliver(delays[len(c.sent)-1]*time.Millisecond, dst, 64, echoReply(req, false))
	}
	res, err := newRunner(c, measure.PingSpec{Count: 4, IntervalMS: 10}).run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if *res.Min != 10 || *res.Max != 40 || *res.Avg != 25 || *res.Median != 25 {
		t.Errorf("got min %v avg %v median %v max %v, want 10 25 25 40", *res.Min, *res.Avg, *res.Median, *res.Max)
	}
	// Replies arrive out of order; each keeps its own sequence number.
	for _, rp := range res.Replies {
		if want := float64(delays[rp.Seq]); rp.RTT != want {
			t.Errorf("seq %d: got rtt %v, want %v", rp.Seq, rp.RTT, want)
		}
	}
	// Early finish: all replies in, no waiting for the timeout.
	if got := c.now.Sub(t0); got != 50*time.Millisecond {
		t.Errorf("run took %v, want 50ms (last reply)", got)
	}
}

// blockingConn never answers; reads block in real time until the deadline.
type blockingConn struct {
	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{}
}

func (c *blockingConn) WriteTo([]byte, netip.Addr) error { return nil }
func (c *blockingConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}
func (c *blockingConn) Close() error { return nil }
func (c *blockingConn) ReadFrom([]byte) (int, int, netip.Addr, error) {
	for {
		c.mu.Lock()
		d, ch := c.deadline, c.changed
		c.mu.Unlock()
		wait := time.Until(d)
		if wait <= 0 {
			return 0, 0, netip.Addr{}, timeoutErr{}
		}
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-ch:
			tm.Stop()
		}
	}
}

func TestCancelPromptAndNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		c := &blockingConn{changed: make(chan struct{})}
		r := &runner{c: c, dst: dst4, spec: measure.PingSpec{Count: 3, IntervalMS: 1000, Size: 56, TimeoutMS: 5000}, mode: ModeRaw, id: 1}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		res, err := r.run(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got err %v, want context.Canceled", err)
		}
		if el := time.Since(start); el > 200*time.Millisecond {
			t.Fatalf("cancel took %v", el)
		}
		if res == nil || res.Sent != 1 {
			t.Fatalf("got partial result %+v, want 1 sent", res)
		}
	}
	waitGoroutines(t, before)
}

func TestDeadlineBoundsRun(t *testing.T) {
	c := &blockingConn{changed: make(chan struct{})}
	r := &runner{c: c, dst: dst4, spec: measure.PingSpec{Count: 3, IntervalMS: 1000, Size: 56, TimeoutMS: 5000}, mode: ModeRaw, id: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	r.run(ctx)
	if el := time.Since(start); el > 300*time.Millisecond {
		t.Fatalf("run with 50ms deadline took %v", el)
	}
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	for range 100 {
		if runtime.NumGoroutine() <= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("goroutines: got %d, want <= %d\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
}

func TestInvalid(t *testing.T) {
	if _, err := Run(context.Background(), netip.Addr{}, measure.PingSpec{}, Options{}); err == nil {
		t.Error("zero address: got nil error")
	}
	if _, err := Run(context.Background(), dst4, measure.PingSpec{Count: 1000}, Options{}); err == nil {
		t.Error("count 1000: got nil error")
	}
	if _, err := Run(context.Background(), dst4, measure.PingSpec{}, Options{Mode: "carrier-pigeon"}); err == nil {
		t.Error("unknown mode: got nil error")
	}
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for raw ICMP sockets (skipped)")
	}
}

func TestLoopbackRaw(t *testing.T) {
	requireRoot(t)
	before := runtime.NumGoroutine()
	for _, a := range []string{"127.0.0.1", "::1"} {
		t.Run(a, func(t *testing.T) {
			res, err := Run(context.Background(), netip.MustParseAddr(a), measure.PingSpec{Count: 3, IntervalMS: 10, TimeoutMS: 1000}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Mode != ModeRaw || res.Sent != 3 || res.Received != 3 || res.Duplicates != 0 {
				t.Fatalf("got %+v, want raw 3/3", res)
			}
			if res.Replies[0].TTL != 64 {
				t.Errorf("got reply ttl %d, want 64", res.Replies[0].TTL)
			}
			if *res.Max > 100 {
				t.Errorf("loopback max rtt %v ms", *res.Max)
			}
		})
	}
	waitGoroutines(t, before)
}

// Concurrent raw pings share the host's ICMP: none may take another's replies.
func TestLoopbackConcurrent(t *testing.T) {
	requireRoot(t)
	var wg sync.WaitGroup
	results := make([]*measure.PingResult, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = Run(context.Background(), netip.MustParseAddr("127.0.0.1"), measure.PingSpec{Count: 5, IntervalMS: 10, TimeoutMS: 1000}, Options{})
		})
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil || r.Received != 5 || r.Duplicates != 0 {
			t.Errorf("run %d: got %+v, %v; want 5 received, no dups", i, r, errs[i])
		}
	}
}

func TestDetect(t *testing.T) {
	requireRoot(t)
	if got := Detect(); got != ModeRaw {
		t.Errorf("Detect as root: got %q, want raw", got)
	}
}
