package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// daemonEnv, when set in the environment of a process importing this
// package, turns the process into one of the lab's daemons before main
// runs (see init). This lets Up start its forwarders from any binary,
// including the test binaries of other packages, with no BinPath.
const daemonEnv = "ANYCATCH_LAB_DAEMON"

func init() {
	if os.Getenv(daemonEnv) != "1" {
		return
	}
	os.Unsetenv(daemonEnv)
	if err := RunDaemon(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "anycatch-lab:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// RunDaemon runs one of the lab's internal daemons, "delay" or "forward",
// until SIGTERM/SIGINT or ctx ends. cmd/anycatch-lab exposes them as hidden
// subcommands.
func RunDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("daemon: missing name (delay or forward)")
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch args[0] {
	case "delay":
		return runDelay(ctx, args[1:], stdout, stderr)
	case "forward":
		return runForward(ctx, args[1:], stdout, stderr)
	case "siteweb":
		return runSiteWeb(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("daemon: unknown %q", args[0])
}

// maxForwardConns bounds concurrent proxied connections.
const maxForwardConns = 512

// runForward listens on --listen inside netns --ns and proxies every TCP
// connection to --target in the daemon's own (host) namespace.
func runForward(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		instance = fs.String("instance", "", "lab instance name (marks the process for cleanup)")
		_        = fs.String("state-dir", "", "lab state dir (marks the process for cleanup)")
		ns       = fs.String("ns", "", "netns to listen in")
		listen   = fs.String("listen", "", "address to listen on inside the netns, e.g. 198.19.255.1:8080")
		target   = fs.String("target", "", "address to connect to from the host namespace, e.g. 127.0.0.1:8080")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: anycatch-lab forward --ns NS --listen ADDR --target ADDR\n\n"+
			"Internal: proxies TCP from the lab's mgmt network to the host's collector.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *instance == "" || *ns == "" || *listen == "" || *target == "" {
		fs.Usage()
		return errors.New("forward: missing flags")
	}
	var ln net.Listener
	err := inNetns(*ns, func() error {
		var err error
		ln, err = net.Listen("tcp", *listen)
		return err
	})
	if err != nil {
		return fmt.Errorf("forward: listen in %s: %w", *ns, err)
	}
	fmt.Fprintln(stdout, "ready")
	if f, ok := stdout.(*os.File); ok {
		f.Close()
	}
	return serveForward(ctx, ln, *target)
}

// serveForward proxies connections from ln to target until ctx ends, then
// closes everything and waits for its goroutines.
func serveForward(ctx context.Context, ln net.Listener, target string) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		slots = make(chan struct{}, maxForwardConns)
	)
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	go func() {
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("forward: accept: %w", err)
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close() // over the bound: refuse rather than queue
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			track(c, true)
			defer track(c, false)
			defer c.Close()
			d := net.Dialer{Timeout: 5 * time.Second}
			u, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				return
			}
			track(u, true)
			defer track(u, false)
			defer u.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(u, c)
			go pipe(c, u)
			<-done
			<-done
		}()
	}
}
