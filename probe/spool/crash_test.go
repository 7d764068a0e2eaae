package spool

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

const crashChildEnv = "ANYCATCH_SPOOL_CRASH_CHILD_DIR"

// TestCrashChild is the child half of TestKill9DuringSpooling: it appends
// results as fast as fsync allows, acknowledging some now and then, and
// reports each durable step on stdout ("A <id>" after Append returned,
// "P <id>" before an Ack, "K <id>" after Ack returned) until it is killed. Bounded in count and time
// in case the parent dies.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child process of TestKill9DuringSpooling only")
	}
	s, err := Open(dir, Options{MaxBytes: 256 << 20, SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Printf("E %v\n", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 200_000 && time.Now().Before(deadline); i++ {
		r := testResult(t, i)
		if err := s.Append(r); err != nil {
			fmt.Printf("E %v\n", err)
			os.Exit(2)
		}
		fmt.Printf("A %s\n", r.ID)
		if i%50 == 49 {
			es, err := s.Peek(20, 1<<20)
			if err != nil {
				fmt.Printf("E %v\n", err)
				os.Exit(2)
			}
			for _, e := range es {
				fmt.Printf("P %s\n", e.ID) // ack in progress: may or may not survive a kill
			}
			if err := s.Ack(es); err != nil {
				fmt.Printf("E %v\n", err)
				os.Exit(2)
			}
			for _, e := range es {
				fmt.Printf("K %s\n", e.ID)
			}
		}
	}
	os.Exit(0)
}

func TestKill9DuringSpooling(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	l := newCrashLedger()
	for round, killAfter := range []int{700, 1100, 400} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		timeout := time.AfterFunc(25*time.Second, func() { cmd.Process.Kill() })
		for seen := 0; seen < killAfter; {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("round %d: child output ended after %d appends: %v", round, seen, err)
			}
			op, err := l.record(line)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if op == "A" {
				seen++
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		// The child keeps working until the kill lands; every line it got
		// into the pipe before dying reports a step it had reached, so
		// record them all.
		if err := l.drain(br); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		cmd.Wait()
		timeout.Stop()

		s := mustOpen(t, dir, Options{MaxBytes: 256 << 20, SegmentBytes: 64 << 10})
		es := peekAll(t, s)
		if err := l.check(es); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		st := s.Stats()
		t.Logf("round %d: appended %d total, acked %d, ack started %d, spooled %d, segments %d, corrupt %d",
			round, len(l.appended), len(l.acked), len(l.acking), len(es), st.Segments, st.Corrupt)
		if st.Corrupt != 0 {
			t.Fatalf("round %d: corrupt count %d after kill -9, want 0", round, st.Corrupt)
		}
		s.Close()
	}
}

// crashLedger is the parent's account, from the child's progress lines, of
// what the child's spool must hold after the child is killed.
type crashLedger struct {
	appended map[measure.UUID]bool // Append returned: durable
	acking   map[measure.UUID]bool // Ack started: may or may not have survived
	acked    map[measure.UUID]bool // Ack returned: must be gone
}

func newCrashLedger() *crashLedger {
	return &crashLedger{
		appended: map[measure.UUID]bool{},
		acking:   map[measure.UUID]bool{},
		acked:    map[measure.UUID]bool{},
	}
}

// record accounts for one progress line and returns its op.
func (l *crashLedger) record(line string) (string, error) {
	op, idText, _ := strings.Cut(strings.TrimSpace(line), " ")
	if op == "E" {
		return op, fmt.Errorf("child error: %s", idText)
	}
	id, err := measure.ParseUUID(idText)
	if err != nil {
		return op, fmt.Errorf("bad child line %q", line)
	}
	switch op {
	case "A":
		l.appended[id] = true
	case "P":
		l.acking[id] = true
	case "K":
		l.acked[id] = true
	default:
		return op, fmt.Errorf("bad child line %q", line)
	}
	return op, nil
}

// drain records every complete line left in r, up to the child's death.
// These lines are as trustworthy as the ones read before the kill: each was
// written after the step it reports. In particular an Ack the child started
// after the parent's last read may have completed, so its "P" lines must
// count. Only a trailing fragment without a newline is ignored.
func (l *crashLedger) drain(r *bufio.Reader) error {
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read child output: %w", err)
		}
		if _, err := l.record(line); err != nil {
			return err
		}
	}
}

// check compares the spool's pending entries after a crash with the ledger.
func (l *crashLedger) check(es []Entry) error {
	inSpool := map[measure.UUID]bool{}
	for _, e := range es {
		if inSpool[e.ID] {
			return fmt.Errorf("%v is in the spool twice", e.ID)
		}
		inSpool[e.ID] = true
		var r measure.Result
		if err := json.Unmarshal(e.Data, &r); err != nil || r.ID != e.ID {
			return fmt.Errorf("unreadable record %v: %v", e.ID, err)
		}
		if l.acked[e.ID] {
			return fmt.Errorf("%v was acknowledged durably but is still spooled", e.ID)
		}
	}
	missing := 0
	for id := range l.appended {
		if !l.acked[id] && !l.acking[id] && !inSpool[id] {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d durably appended, unacknowledged results lost", missing)
	}
	return nil
}

// TestCrashLedgerCountsLinesBeforeKill replays, in process and without
// timing, the interleaving that made TestKill9DuringSpooling fail: the
// parent stops reading at its kill point, the 50th append, which is also
// the child's cue to Peek and Ack; the kill lands after Ack returned but
// before the "K" lines. The spool did its job (the acked results are gone);
// a parent that ignores the lines written between its last read and the
// child's death reports them as lost.
func TestCrashLedgerCountsLinesBeforeKill(t *testing.T) {
	dir := t.TempDir()
	opt := Options{MaxBytes: 256 << 20, SegmentBytes: 64 << 10, NoSync: true}
	s := mustOpen(t, dir, opt)
	var out bytes.Buffer
	const killAfter = 50
	for i := range killAfter {
		r := testResult(t, i)
		if err := s.Append(r); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "A %s\n", r.ID)
	}
	es, err := s.Peek(20, 1<<20)
	if err != nil || len(es) != 20 {
		t.Fatalf("peek: got %d entries, err %v; want 20", len(es), err)
	}
	for _, e := range es {
		fmt.Fprintf(&out, "P %s\n", e.ID)
	}
	if err := s.Ack(es); err != nil {
		t.Fatal(err)
	}
	s.closeFiles() // killed: no Close, no "K" lines

	l := newCrashLedger()
	br := bufio.NewReader(&out)
	for seen := 0; seen < killAfter; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("transcript ended after %d appends: %v", seen, err)
		}
		if op, err := l.record(line); err != nil {
			t.Fatal(err)
		} else if op == "A" {
			seen++
		}
	}
	s = mustOpen(t, dir, opt)
	defer s.Close()
	pending := peekAll(t, s)
	if len(pending) != killAfter-len(es) {
		t.Fatalf("after reopen %d pending, want %d", len(pending), killAfter-len(es))
	}
	// What the old parent checked: only the lines up to its kill point.
	if err := l.check(pending); err == nil || !strings.Contains(err.Error(), "20 durably appended") {
		t.Fatalf("ledger without the lines after the kill point: got %v, want 20 reported lost", err)
	}
	if err := l.drain(br); err != nil {
		t.Fatal(err)
	}
	if err := l.check(pending); err != nil {
		t.Fatalf("ledger with every line the child wrote: %v", err)
	}

	// The ledger must still catch a real loss: a result acked with no "P"
	// line is one the parent believes pending.
	if err := s.Ack(pending[:1]); err != nil {
		t.Fatal(err)
	}
	if err := l.check(peekAll(t, s)); err == nil || !strings.Contains(err.Error(), "1 durably appended") {
		t.Fatalf("after a silent ack: got %v, want 1 reported lost", err)
	}
}
