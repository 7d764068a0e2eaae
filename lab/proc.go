package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run executes a host command (ip, birdc, ...) and returns its stdout; the
// error carries stderr.
func run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out.Bytes(), nil
}

// ipBatch runs ip commands (one per line, without the leading "ip")
// inside netns ns, or in the host namespace for link creation when ns is
// "" (which only creates devices directly inside lab namespaces).
func ipBatch(ctx context.Context, ns string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	_, err := run(ctx, []byte(strings.Join(lines, "\n")+"\n"), "ip", args...)
	return err
}

// startOpts describes one long-running lab process.
type startOpts struct {
	argv    []string
	env     []string // added to the environment
	logPath string
	ready   bool // wait for a "ready" line on stdout
	detach  bool // survive the parent (CLI); otherwise SIGKILL on parent death
}

// startProc starts a lab process in its own session with stdout/stderr to
// its log file. The returned wait channel closes when it exits, if it is
// our child.
func startProc(o startOpts) (*exec.Cmd, <-chan struct{}, error) {
	logf, err := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	cmd := exec.Command(o.argv[0], o.argv[1:]...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if !o.detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	var pr *os.File
	if o.ready {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		pr = r
		cmd.Stdout = w
	} else {
		cmd.Stdout = logf
	}
	err = cmd.Start()
	if pr != nil {
		cmd.Stdout.(*os.File).Close() // the child has its copy
	}
	if err != nil {
		if pr != nil {
			pr.Close()
		}
		return nil, nil, fmt.Errorf("start %s: %w", filepath.Base(o.argv[0]), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if pr != nil {
		defer pr.Close()
		line := make(chan string, 1)
		go func() {
			s, _ := bufio.NewReader(pr).ReadString('\n')
			line <- strings.TrimSpace(s)
		}()
		select {
		case s := <-line:
			if s != "ready" {
				<-done
				return nil, nil, fmt.Errorf("%s did not start: %s", filepath.Base(o.argv[0]), logTail(o.logPath))
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			return nil, nil, fmt.Errorf("%s not ready after 10s (see %s)", filepath.Base(o.argv[0]), o.logPath)
		}
	}
	return cmd, done, nil
}

// procAlive reports whether pid exists and is not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// procCmdline returns the NUL-separated argv of pid.
func procCmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// ownedBy reports whether pid's command line names this lab: its state
// dir appears in an argument, or "--instance NAME" does. It guards against
// killing an unrelated process that reused a recorded PID.
func ownedBy(pid int, name, stateDir string) bool {
	args := procCmdline(pid)
	for i, a := range args {
		if stateDir != "" && strings.Contains(a, stateDir) {
			return true
		}
		if a == "--instance" && i+1 < len(args) && args[i+1] == name {
			return true
		}
	}
	return false
}

// daemonPIDs finds the lab's own daemons (delay, forward) by their
// "--instance NAME" argument: after a crash they may not be recorded.
func daemonPIDs(name string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		args := procCmdline(pid)
		for i, a := range args {
			if a == "--instance" && i+1 < len(args) && args[i+1] == name {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// killAll sends SIGTERM to pids, waits up to grace for them to exit, then
// SIGKILLs the rest and waits again (bounded).
func killAll(pids []int, grace time.Duration) error {
	var live []int
	for _, pid := range pids {
		if pid > 1 && procAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			live = append(live, pid)
		}
	}
	wait := func(d time.Duration) []int {
		deadline := time.Now().Add(d)
		for {
			var still []int
			for _, pid := range live {
				if procAlive(pid) {
					still = append(still, pid)
				}
			}
			if len(still) == 0 || time.Now().After(deadline) {
				return still
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	live = wait(grace)
	for _, pid := range live {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if live = wait(2 * time.Second); len(live) > 0 {
		return fmt.Errorf("processes still alive after SIGKILL: %v", live)
	}
	return nil
}

// netnsPIDs lists processes inside netns ns.
func netnsPIDs(ctx context.Context, ns string) []int {
	out, err := run(ctx, nil, "ip", "netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// namespacesWithPrefix lists named netns beginning with prefix.
func namespacesWithPrefix(prefix string) []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// Preflight checks that this machine can run a lab: root, iproute2, BIRD2,
// NSD and /dev/net/tun. The error names the Debian package to install.
func Preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root to create network namespaces: run it with sudo")
	}
	for _, t := range []struct{ bin, pkg string }{
		{"ip", "iproute2"}, {"bird", "bird2"}, {"birdc", "bird2"}, {"nsd", "nsd"},
	} {
		if _, err := exec.LookPath(t.bin); err != nil {
			return fmt.Errorf("%s not found in PATH: install it with 'apt-get install -y %s'", t.bin, t.pkg)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("/dev/net/tun missing: the delay forwarder needs the tun module ('modprobe tun')")
	}
	return nil
}

// logTail returns the last line or so of a log, for error messages (the
// state dir holding it is removed when Up fails).
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	if s == "" {
		return "no output"
	}
	return s
}
