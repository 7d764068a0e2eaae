package spool

import (
	"bufio"
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
	appended := map[measure.UUID]bool{}
	acked := map[measure.UUID]bool{}
	acking := map[measure.UUID]bool{} // ack started, not confirmed
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
		seen := 0
		timeout := time.AfterFunc(25*time.Second, func() { cmd.Process.Kill() })
		for seen < killAfter {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("round %d: child output ended after %d appends: %v", round, seen, err)
			}
			op, idText, _ := strings.Cut(strings.TrimSpace(line), " ")
			if op == "E" {
				t.Fatalf("round %d: child error: %s", round, idText)
			}
			id, err := measure.ParseUUID(idText)
			if err != nil {
				t.Fatalf("round %d: bad child line %q", round, line)
			}
			switch op {
			case "A":
				appended[id] = true
				seen++
			case "P":
				acking[id] = true
			case "K":
				acked[id] = true
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		io.Copy(io.Discard, br) // lines written before the kill landed; ignore them (unconfirmed)
		cmd.Wait()
		timeout.Stop()

		s := mustOpen(t, dir, Options{MaxBytes: 256 << 20, SegmentBytes: 64 << 10})
		es := peekAll(t, s)
		inSpool := map[measure.UUID]bool{}
		for _, e := range es {
			if inSpool[e.ID] {
				t.Fatalf("round %d: %v is in the spool twice", round, e.ID)
			}
			inSpool[e.ID] = true
			var r measure.Result
			if err := json.Unmarshal(e.Data, &r); err != nil || r.ID != e.ID {
				t.Fatalf("round %d: unreadable record %v: %v", round, e.ID, err)
			}
			if acked[e.ID] {
				t.Fatalf("round %d: %v was acknowledged durably but is still spooled", round, e.ID)
			}
		}
		missing := 0
		for id := range appended {
			if !acked[id] && !acking[id] && !inSpool[id] {
				missing++
			}
		}
		if missing > 0 {
			t.Fatalf("round %d: %d durably appended, unacknowledged results lost", round, missing)
		}
		st := s.Stats()
		t.Logf("round %d: appended %d total, acked %d, spooled %d, segments %d, corrupt %d",
			round, len(appended), len(acked), len(es), st.Segments, st.Corrupt)
		if st.Corrupt != 0 {
			t.Fatalf("round %d: corrupt count %d after kill -9, want 0", round, st.Corrupt)
		}
		s.Close()
	}
}
