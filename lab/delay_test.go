package lab

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

func TestDelayLine(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	d := newDelayLine(10*ms, 3)

	if _, wait, ok := d.pop(t0); ok || wait >= 0 {
		t.Fatalf("empty line: got ok=%v wait=%v, want nothing and a negative wait", ok, wait)
	}
	d.push(t0, []byte("a"))
	d.push(t0.Add(2*ms), []byte("b"))
	buf := []byte("c")
	d.push(t0.Add(4*ms), buf)
	buf[0] = 'X' // push must copy: the reader reuses its buffer
	if d.push(t0.Add(5*ms), []byte("d")) {
		t.Error("push beyond the bound: got accepted, want dropped")
	}
	if d.dropped != 1 {
		t.Errorf("dropped: got %d, want 1", d.dropped)
	}

	steps := []struct {
		at       time.Duration
		wantPkt  string // "" means nothing due
		wantWait time.Duration
	}{
		{9 * ms, "", 1 * ms},
		{10 * ms, "a", 0},
		{10 * ms, "", 2 * ms},
		{13 * ms, "b", 0},
		{13 * ms, "", 1 * ms},
		{30 * ms, "c", 0},
		{30 * ms, "", -1},
	}
	for i, s := range steps {
		pkt, wait, ok := d.pop(t0.Add(s.at))
		if got := string(pkt); got != s.wantPkt || ok != (s.wantPkt != "") {
			t.Errorf("step %d at %v: got packet %q ok=%v, want %q", i, s.at, got, ok, s.wantPkt)
		}
		if !ok && wait != s.wantWait {
			t.Errorf("step %d at %v: got wait %v, want %v", i, s.at, wait, s.wantWait)
		}
	}
	// Room again after draining.
	if !d.push(t0.Add(40*ms), []byte("e")) {
		t.Error("push after drain: got dropped")
	}
}

// chanWriter records writes with their time.
type chanWriter struct {
	mu    sync.Mutex
	pkts  [][]byte
	times []time.Time
}

func (w *chanWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pkts = append(w.pkts, append([]byte(nil), p...))
	w.times = append(w.times, time.Now())
	return len(p), nil
}

func TestDelayLineRelease(t *testing.T) {
	const delay = 20 * time.Millisecond
	d := newDelayLine(delay, 16)
	w := &chanWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.release(ctx, w) }()
	start := time.Now()
	d.push(start, []byte{1})
	d.push(start, []byte{2})
	deadline := time.Now().Add(2 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.pkts)
		w.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if len(w.pkts) != 2 || !bytes.Equal(w.pkts[0], []byte{1}) || !bytes.Equal(w.pkts[1], []byte{2}) {
		t.Fatalf("got packets %v, want [[1] [2]]", w.pkts)
	}
	if got := w.times[0].Sub(start); got < delay || got > delay+15*time.Millisecond {
		t.Errorf("released after %v, want %v (+ scheduling slack)", got, delay)
	}
}

func TestParseBirdRoute(t *testing.T) {
	const bgp = "BIRD 2.0.12 ready.\nTable master4:\n" +
		"198.18.53.0/24       unicast [n_nae_v4 05:12:24.897] * (100) [AS65004i]\n" +
		"\tvia 100.64.0.37 on to-nae\n\tType: BGP univ\n\tBGP.origin: IGP\n" +
		"\tBGP.as_path: 65103 65004 65004\n\tBGP.next_hop: 100.64.0.37\n\tBGP.local_pref: 100\n"
	r, err := parseBirdRoute(bgp)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Found || r.Proto != "n_nae_v4" || len(r.ASPath) != 3 || r.ASPath[0] != 65103 || r.ASPath[2] != 65004 {
		t.Errorf("got %+v", r)
	}
	if got := dedupPath(r.ASPath); len(got) != 2 || got[1] != 65004 {
		t.Errorf("dedup: got %v, want [65103 65004]", got)
	}
	r, err = parseBirdRoute("BIRD 2.0.12 ready.\nNetwork not found\n")
	if err != nil || r.Found {
		t.Errorf("not found: got %+v, %v", r, err)
	}
	if _, err := parseBirdRoute("Table master4:\n\tBGP.as_path: 65001 x\n"); err == nil {
		t.Error("bad as_path: want error")
	}
}

func TestParseProtocols(t *testing.T) {
	out := "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\n" +
		"device1    Device     ---        up     05:12:24.000  \n" +
		"n_gru_v4   BGP        ---        up     05:12:25.000  Established   \n" +
		"n_nae_v6   BGP        ---        start  05:12:25.000  Active        Socket: Connection refused\n"
	ss := parseProtocols("sam", out)
	if len(ss) != 2 || ss[0].Info != "Established" || ss[1].State != "start" || ss[1].Info != "Active Socket: Connection refused" {
		t.Errorf("got %+v", ss)
	}
}
