package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// Live channel load (--live N): enroll N simulated probes, open N live
// channels to the server (signed upgrade + challenge), hold them idle for
// --live-idle and report the server's memory per connection (RSS from
// --server-pid, heap and goroutines from its /metrics) and its CPU while
// idle; with --db, change the loadgen target and time the schedule push
// reaching every connection. Bounded: N ≤ 20000, idle ≤ 10 m, every phase
// has a deadline.

type liveProbe struct {
	id   string
	key  ed25519.PrivateKey
	conn *websocket.Conn
	push atomic.Int64 // unix nanos of the last schedule push received
}

func liveLoad(ctx context.Context, o options, meter cpuMeter, db *store.DB, stdout io.Writer) error {
	if o.live > 20000 {
		return errors.New("--live: at most 20000 connections")
	}
	if o.liveIdle <= 0 || o.liveIdle > 10*time.Minute {
		return errors.New("--live-idle must be in (0, 10m]")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}

	before := scrape(ctx, client, o.url, meter.serverPID)
	fmt.Fprintf(stdout, "server before: %s\n", before)

	// Enroll.
	ectx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	probes := make([]*liveProbe, o.live)
	if err := parallel(ectx, o.live, 32, func(i int) error {
		p, err := enrollOnly(ectx, client, o.url, o.token)
		probes[i] = p
		return err
	}); err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	fmt.Fprintf(stdout, "enrolled %d probes in %s\n", o.live, time.Since(start).Round(time.Millisecond))

	// Connect. Each connection keeps one reader goroutine (it answers the
	// server's pings and notes schedule pushes), as a probe does.
	var readers sync.WaitGroup
	defer func() {
		for _, p := range probes {
			if p != nil && p.conn != nil {
				p.conn.CloseNow()
			}
		}
		readers.Wait()
	}()
	readCtx, stopReaders := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReaders()
	start = time.Now()
	if err := parallel(ectx, o.live, 64, func(i int) error {
		p := probes[i]
		c, err := dialLive(ectx, client, o.url, p)
		if err != nil {
			return err
		}
		p.conn = c
		readers.Go(func() {
			for {
				_, b, err := c.Read(readCtx)
				if err != nil {
					return
				}
				if bytes.Contains(b, []byte(`"schedule"`)) {
					p.push.Store(time.Now().UnixNano())
				}
			}
		})
		return nil
	}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	fmt.Fprintf(stdout, "connected %d live channels in %s\n", o.live, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the server settle (GC) before measuring
	runtimeGC(ctx, client, o.url)
	after := scrape(ctx, client, o.url, meter.serverPID)
	fmt.Fprintf(stdout, "server with %d connections: %s\n", o.live, after)
	n := float64(o.live)
	fmt.Fprintf(stdout, "per connection: RSS %.1f KiB, Go heap in use %.1f KiB, goroutines %.2f\n",
		float64(after.rss-before.rss)/1024/n, float64(after.heap-before.heap)/1024/n, float64(after.goroutines-before.goroutines)/n)

	// Idle.
	c0 := meter.read()
	t0 := time.Now()
	select {
	case <-time.After(o.liveIdle):
	case <-ctx.Done():
		return ctx.Err()
	}
	c1 := meter.read()
	el := time.Since(t0)
	if meter.serverPID > 0 {
		fmt.Fprintf(stdout, "idle %s with %d connections: server CPU %s (%.2f%% of one core)", el.Round(time.Millisecond), o.live,
			(c1.server - c0.server).Round(time.Millisecond), 100*float64(c1.server-c0.server)/float64(el))
		if meter.pgData != "" {
			fmt.Fprintf(stdout, ", postgres CPU %s", (c1.pg - c0.pg).Round(time.Millisecond))
		}
		fmt.Fprintln(stdout)
	}

	// Push: a target change through the database reaches every
	// connection (NOTIFY -> reload -> broadcast).
	if db != nil {
		t0 := time.Now()
		if _, err := db.Pool().Exec(ctx, `UPDATE targets SET interval_sec = CASE WHEN interval_sec = 60 THEN 61 ELSE 60 END WHERE name = 'loadgen'`); err != nil {
			return fmt.Errorf("change target: %w", err)
		}
		deadline := time.Now().Add(60 * time.Second)
		var lat []time.Duration
		for {
			lat = lat[:0]
			for _, p := range probes {
				if at := p.push.Load(); at >= t0.UnixNano() {
					lat = append(lat, time.Duration(at-t0.UnixNano()))
				}
			}
			if len(lat) == len(probes) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		slices.Sort(lat)
		if len(lat) == 0 {
			fmt.Fprintf(stdout, "schedule push: no connection got it within 60 s\n")
		} else {
			fmt.Fprintf(stdout, "schedule push after a target change in the database: %d/%d connections got it; p50 %s, p99 %s, last %s\n",
				len(lat), len(probes), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
		}
	}
	return nil
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error (the rest are skipped once one failed).
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				mu.Lock()
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("#%d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func enrollOnly(ctx context.Context, client *http.Client, url, token string) (*liveProbe, error) {
	id, key, err := enrollKey(ctx, client, url, token, "loadgen-live")
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	return &liveProbe{id: id, key: key}, nil
}

// dialLive opens and authenticates one live channel, as a probe does.
func dialLive(ctx context.Context, client *http.Client, url string, p *liveProbe) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hdr := http.Header{}
	measure.SignRequest(hdr, p.key, p.id, http.MethodGet, measure.PathLive, nil, time.Now())
	c, _, err := websocket.Dial(ctx, url+measure.PathLive, &websocket.DialOptions{HTTPClient: client, HTTPHeader: hdr, Subprotocols: []string{measure.LiveSubprotocol}})
	if err != nil {
		return nil, err
	}
	var m measure.LiveMessage
	_, b, err := c.Read(ctx)
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || m.Type != measure.LiveChallenge {
		c.CloseNow()
		return nil, fmt.Errorf("live: want a challenge: %v", err)
	}
	b, _ = json.Marshal(measure.LiveMessage{Type: measure.LiveAuth, Probe: p.id, Proof: measure.LiveProof(p.key, p.id, m.Nonce)})
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		c.CloseNow()
		return nil, err
	}
	if _, b, err = c.Read(ctx); err != nil || !bytes.Contains(b, []byte(`"welcome"`)) {
		c.CloseNow()
		return nil, fmt.Errorf("live: want welcome: %v %s", err, b)
	}
	return c, nil
}

// serverStats is what the server reports about its memory.
type serverStats struct {
	rss, heap, goroutines int64
	live                  int64
}

func (s serverStats) String() string {
	return fmt.Sprintf("RSS %.1f MiB, Go heap in use %.1f MiB, %d goroutines, %d live connections",
		float64(s.rss)/(1<<20), float64(s.heap)/(1<<20), s.goroutines, s.live)
}

// scrape reads the server's /metrics and, with pid, its RSS.
func scrape(ctx context.Context, client *http.Client, url string, pid int) serverStats {
	var s serverStats
	if pid > 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					s.rss = kb << 10
				}
			}
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(val), 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			s.heap = int64(v)
		case "go_goroutines":
			s.goroutines = int64(v)
		case "anycatch_collector_live_connections":
			s.live = int64(v)
		}
	}
	return s
}

// runtimeGC gives the server's garbage collector a moment: heap figures
// right after 10,000 handshakes include garbage not yet collected. There
// is no endpoint to force a GC; waiting for the periodic one is enough
// for the comparison (both figures are taken the same way).
func runtimeGC(ctx context.Context, _ *http.Client, _ string) {
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
	}
}
