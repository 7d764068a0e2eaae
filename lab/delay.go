package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// delayLine is one direction of a delayed link: a bounded FIFO of packets,
// each released delay after it arrived. The delay is constant, so arrival
// order is release order and a FIFO suffices. It is pure: the caller
// passes the clock.
type delayLine struct {
	delay time.Duration
	max   int

	mu      sync.Mutex
	q       []queuedPacket // FIFO; q[0] is due first
	dropped uint64
	wake    chan struct{} // signalled when a packet lands in an empty queue
}

type queuedPacket struct {
	due time.Time
	pkt []byte
}

func newDelayLine(delay time.Duration, max int) *delayLine {
	return &delayLine{delay: delay, max: max, wake: make(chan struct{}, 1)}
}

// push queues a copy of pkt to be released at now+delay. It reports false
// and counts a drop when the queue is full, as a router's buffer would.
func (d *delayLine) push(now time.Time, pkt []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.q) >= d.max {
		d.dropped++
		return false
	}
	d.q = append(d.q, queuedPacket{due: now.Add(d.delay), pkt: append([]byte(nil), pkt...)})
	if len(d.q) == 1 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// pop returns the head packet if it is due at now. Otherwise it returns
// how long until the head is due, or a negative wait when the queue is
// empty.
func (d *delayLine) pop(now time.Time) (pkt []byte, wait time.Duration, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.q) == 0 {
		return nil, -1, false
	}
	h := d.q[0]
	if now.Before(h.due) {
		return nil, h.due.Sub(now), false
	}
	d.q[0] = queuedPacket{}
	d.q = d.q[1:]
	if len(d.q) == 0 {
		d.q = d.q[:0:0] // let the backing array go
	}
	return h.pkt, 0, true
}

// release writes due packets to w until ctx ends.
func (d *delayLine) release(ctx context.Context, w io.Writer) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pkt, wait, ok := d.pop(time.Now())
		if ok {
			// A write error (device gone, packet refused) drops the
			// packet; the link keeps going.
			_, _ = w.Write(pkt)
			continue
		}
		if wait < 0 {
			select {
			case <-d.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
	}
}

// fill reads packets from r into d until r fails (closed on shutdown).
func (d *delayLine) fill(r io.Reader) {
	buf := make([]byte, 65536)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		d.push(time.Now(), buf[:n])
	}
}

// runDelay is the delay daemon: it creates TUN device ifA in netns nsA and
// ifB in nsB, prints "ready" on stdout, and forwards packets both ways with
// the configured one-way delays until SIGTERM.
func runDelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("delay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		instance = fs.String("instance", "", "lab instance name (marks the process for cleanup)")
		_        = fs.String("state-dir", "", "lab state dir (marks the process for cleanup)")
		nsA      = fs.String("ns-a", "", "netns name of side A")
		ifA      = fs.String("if-a", "", "TUN device name in side A")
		nsB      = fs.String("ns-b", "", "netns name of side B")
		ifB      = fs.String("if-b", "", "TUN device name in side B")
		ab       = fs.Duration("delay-ab", 0, "one-way delay A to B")
		ba       = fs.Duration("delay-ba", 0, "one-way delay B to A")
		queue    = fs.Int("queue", 4096, "max packets held per direction")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: anycatch-lab delay --ns-a NS --if-a IF --ns-b NS --if-b IF --delay-ab D --delay-ba D\n\n"+
			"Internal: the TUN delay forwarder that 'up' starts for each delayed link.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *instance == "" || *nsA == "" || *nsB == "" || *ifA == "" || *ifB == "" || *queue < 1 {
		fs.Usage()
		return errors.New("delay: missing flags")
	}
	ta, err := openTUNIn(*nsA, *ifA)
	if err != nil {
		return fmt.Errorf("delay: %w", err)
	}
	defer ta.Close()
	tb, err := openTUNIn(*nsB, *ifB)
	if err != nil {
		return fmt.Errorf("delay: %w", err)
	}
	defer tb.Close()
	fmt.Fprintln(stdout, "ready")
	if f, ok := stdout.(*os.File); ok {
		f.Close() // the parent stops reading after "ready"
	}

	lab, lba := newDelayLine(*ab, *queue), newDelayLine(*ba, *queue)
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); lab.fill(ta) }()
	go func() { defer wg.Done(); lba.fill(tb) }()
	go func() { defer wg.Done(); lab.release(ctx, tb) }()
	go func() { defer wg.Done(); lba.release(ctx, ta) }()
	<-ctx.Done()
	ta.Close() // unblocks the readers
	tb.Close()
	wg.Wait()
	return nil
}

// inNetns runs fn on a thread switched into the named network namespace,
// so that sockets and TUN devices fn creates belong to that namespace.
// The thread is switched back afterwards; if that fails it stays locked
// and dies with the goroutine rather than run other code in the wrong
// namespace.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			runtime.UnlockOSThread()
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return // thread stays locked and exits with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// openTUNIn creates TUN device name inside netns ns. The device belongs to
// the namespace the /dev/net/tun fd was opened in and keeps working from
// any thread afterwards.
func openTUNIn(ns, name string) (*os.File, error) {
	var fd int
	err := inNetns(ns, func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("tun %s: %w", name, err)
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("create tun %s in %s: %w", name, ns, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	// Non-blocking, so os.NewFile hands it to the runtime poller and Close
	// unblocks a pending Read.
	return os.NewFile(uintptr(fd), "tun:"+ns+"/"+name), nil
}
