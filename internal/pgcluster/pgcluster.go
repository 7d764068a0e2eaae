// Package pgcluster runs a private PostgreSQL cluster for anycatch: the
// embedded database of a single-machine server and the throwaway cluster of
// the test suite.
//
// A cluster lives in one data directory. [Start] finds the PostgreSQL
// binaries, runs initdb when the directory is not initialized yet (reusing
// it otherwise), removes a stale postmaster.pid left by a crash, starts
// postgres listening on a unix socket only (never TCP) and waits until it
// accepts connections. [Cluster.Stop] performs a fast shutdown (what
// "pg_ctl stop -m fast" does: SIGINT to the postmaster, then wait).
//
// PostgreSQL refuses to run as root. When the calling process is root,
// initdb and postgres run as the "postgres" system user (Debian's
// postgresql package creates it) and the directories are chowned to it.
//
// The postmaster is a child of the calling process and receives SIGINT
// (fast shutdown) if that process dies without stopping it, so a crashed
// server or test binary does not leave a postgres behind.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Superuser is the database superuser created by initdb.
const Superuser = "postgres"

// maxSocketPath is the longest unix socket path Linux accepts (sun_path is
// 108 bytes including the terminating NUL).
const maxSocketPath = 107

// Options configures a cluster. Only DataDir is required.
type Options struct {
	// DataDir is the cluster's data directory (PGDATA). It is created
	// when missing and initialized when empty.
	DataDir string
	// BinDir holds initdb and postgres. "" means search PATH, then the
	// newest /usr/lib/postgresql/*/bin.
	BinDir string
	// SocketDir is where the unix socket is created. "" means DataDir when
	// the socket path fits in 107 bytes, else a new directory under the
	// system temp dir (removed by Stop).
	SocketDir string
	// Port only names the socket file (.s.PGSQL.<port>); nothing listens on
	// TCP. 0 means 5432.
	Port int
	// RunAs is the OS user initdb and postgres run as when the calling
	// process is root. "" means "postgres". Ignored when not root.
	RunAs string
	// Unsafe turns off durability (fsync, synchronous_commit,
	// full_page_writes) for speed. Only for throwaway test data: a crash
	// can corrupt the cluster.
	Unsafe bool
	// Settings are extra postgres configuration parameters (-c name=value).
	Settings map[string]string
	// StartTimeout bounds waiting for postgres to accept connections.
	// 0 means 60 s.
	StartTimeout time.Duration
	// Logger receives lifecycle messages. nil means slog.Default().
	Logger *slog.Logger
	// Attach, when a postgres is already running on DataDir (an
	// anycatch-server using its embedded database), connects to it instead
	// of stopping it; Stop and Close then leave it running. Admin
	// subcommands set it; the server does not (it owns its cluster).
	Attach bool
}

// Cluster is a running (or stopped) private PostgreSQL cluster. Its methods
// are safe for concurrent use.
type Cluster struct {
	opts      Options
	bin       string
	cred      *syscall.Credential // nil when not root
	uid, gid  int                 // owner of the files; -1 when not root
	socketDir string
	tmpSocket bool // socketDir was created by us
	attached  bool // using a postgres another process runs (Options.Attach)

	mu      sync.Mutex
	proc    *exec.Cmd
	exited  chan struct{} // closed when proc has been waited for
	waitErr error
	logFile *os.File
}

// Start initializes DataDir if needed and starts postgres on it. The caller
// must call Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.removeTmpSocket()
		return nil, err
	}
	return c, nil
}

func prepare(opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgcluster: data dir not set")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: data dir: %w", err)
	}
	opts.DataDir = dataDir
	if opts.Port == 0 {
		opts.Port = 5432
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	bin := opts.BinDir
	if bin == "" {
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{opts: opts, bin: bin, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		name := opts.RunAs
		if name == "" {
			name = "postgres"
		}
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: postgres refuses to run as root and user %q was not found (%w): install the Debian package postgresql, or create the user with: useradd --system --home-dir /var/lib/postgresql --shell /bin/sh %s", name, err, name)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.uid, c.gid = uid, gid
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := c.makeDirs(); err != nil {
		return nil, err
	}
	return c, nil
}

// FindBinDir returns the directory holding initdb and postgres: the one on
// PATH, else the newest /usr/lib/postgresql/<major>/bin.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		// Debian links the binaries into PATH; the real directory names
		// the major version and holds the rest of the tools.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgcluster: PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin: install the Debian package postgresql (apt-get install postgresql), or pass a database URL")
}

func majorOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func (c *Cluster) makeDirs() error {
	dd := c.opts.DataDir
	if err := os.MkdirAll(filepath.Dir(dd), 0o755); err != nil {
		return fmt.Errorf("pgcluster: create parent of data dir: %w", err)
	}
	if err := os.Mkdir(dd, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("pgcluster: create data dir: %w", err)
	}
	if err := c.chown(dd); err != nil {
		return err
	}
	if c.uid >= 0 {
		if err := checkTraversable(filepath.Dir(dd)); err != nil {
			return err
		}
	}
	c.socketDir = c.opts.SocketDir
	if c.socketDir == "" {
		c.socketDir = dd
		if len(c.socketPath(dd)) > maxSocketPath {
			d, err := os.MkdirTemp("", "anycatch-pg-")
			if err != nil {
				return fmt.Errorf("pgcluster: create socket dir: %w", err)
			}
			c.socketDir, c.tmpSocket = d, true
		}
	} else if err := os.MkdirAll(c.socketDir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: create socket dir: %w", err)
	}
	if n := len(c.socketPath(c.socketDir)); n > maxSocketPath {
		return fmt.Errorf("pgcluster: socket path %s is %d bytes, longer than the %d unix sockets allow: choose a shorter socket dir", c.socketPath(c.socketDir), n, maxSocketPath)
	}
	if c.socketDir != dd {
		if err := c.chown(c.socketDir); err != nil {
			return err
		}
	}
	return nil
}

// checkTraversable fails when the postgres user could not reach dir because
// an ancestor lacks the execute bit for others.
func checkTraversable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgcluster: stat %s: %w", d, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pgcluster: the postgres user cannot reach the data dir: %s is not traversable (chmod o+x %s, or choose another data dir)", d, d)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

func (c *Cluster) chown(path string) error {
	if c.uid < 0 {
		return nil
	}
	if err := os.Chown(path, c.uid, c.gid); err != nil {
		return fmt.Errorf("pgcluster: chown %s to the postgres user: %w", path, err)
	}
	return nil
}

func (c *Cluster) socketPath(dir string) string {
	return filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(c.opts.Port))
}

// DataDir returns the cluster's data directory.
func (c *Cluster) DataDir() string { return c.opts.DataDir }

// SocketDir returns the directory holding the unix socket.
func (c *Cluster) SocketDir() string { return c.socketDir }

// URL returns a connection URL for database dbname ("" means postgres) as
// the superuser, over the unix socket.
func (c *Cluster) URL(dbname string) string {
	if dbname == "" {
		dbname = "postgres"
	}
	q := url.Values{}
	q.Set("host", c.socketDir)
	q.Set("port", strconv.Itoa(c.opts.Port))
	q.Set("user", Superuser)
	q.Set("sslmode", "disable")
	return (&url.URL{Scheme: "postgres", Path: "/" + dbname, RawQuery: q.Encode()}).String()
}

// Initialized reports whether dir holds an initialized cluster.
func Initialized(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	return err == nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	args := []string{
		"--pgdata", c.opts.DataDir,
		"--username", Superuser,
		"--auth", "trust",
		"--encoding", "UTF8",
		"--locale", "C",
	}
	if c.opts.Unsafe {
		args = append(args, "--no-sync")
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "initdb"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.Env = c.env()
	cmd.Dir = c.opts.DataDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: initdb %s: %w: %s", c.opts.DataDir, err, tail(out, 2000))
	}
	c.opts.Logger.Info("postgres cluster initialized", "data_dir", c.opts.DataDir, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *Cluster) env() []string {
	env := []string{"LC_ALL=C", "PATH=" + c.bin + ":/usr/bin:/bin"}
	if c.uid >= 0 {
		env = append(env, "HOME="+c.opts.DataDir, "USER=postgres")
	} else if h := os.Getenv("HOME"); h != "" {
		env = append(env, "HOME="+h)
	}
	return env
}

// Running reports whether the postmaster started by c is running.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runningLocked()
}

func (c *Cluster) runningLocked() bool {
	if c.proc == nil {
		return false
	}
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// Start starts postgres on the cluster (after a Stop, or the first time via
// the package-level Start). It initializes the data dir if needed and is a
// no-op when already running.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runningLocked() {
		return nil
	}
	dd := c.opts.DataDir
	if c.opts.Attach && c.attachLocked() {
		return nil
	}
	if !Initialized(dd) {
		if err := c.initdb(ctx); err != nil {
			return err
		}
	} else if err := c.checkVersion(); err != nil {
		return err
	}
	if err := c.clearStalePID(ctx); err != nil {
		return err
	}
	logPath := filepath.Join(dd, "postgres.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgcluster: open log: %w", err)
	}
	if err := c.chown(logPath); err != nil {
		lf.Close()
		return err
	}
	args := []string{"-D", dd}
	for _, kv := range c.settings() {
		args = append(args, "-c", kv)
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.cred,
		Setpgid:    true,           // a ^C in a terminal reaches us, not postgres directly
		Pdeathsig:  syscall.SIGINT, // fast shutdown if we die without stopping it
	}
	cmd.Env = c.env()
	cmd.Dir = dd
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := startOnLockedThread(cmd); err != nil {
		lf.Close()
		return fmt.Errorf("pgcluster: start postgres: %w", err)
	}
	c.proc, c.logFile = cmd, lf
	c.exited = make(chan struct{})
	c.waitErr = nil
	exited := c.exited
	go func() { // owned by c: Stop waits on exited
		err := cmd.Wait()
		c.mu.Lock()
		c.waitErr = err
		c.mu.Unlock()
		lf.Close()
		close(exited)
	}()
	if err := c.waitReady(ctx, cmd.Process.Pid, exited); err != nil {
		c.stopLocked(context.Background())
		return err
	}
	c.opts.Logger.Info("postgres started", "data_dir", dd, "socket_dir", c.socketDir, "pid", cmd.Process.Pid)
	return nil
}

func (c *Cluster) settings() []string {
	s := map[string]string{
		"listen_addresses":        "",
		"unix_socket_directories": c.socketDir,
		"port":                    strconv.Itoa(c.opts.Port),
		"logging_collector":       "off",
	}
	if c.opts.Unsafe {
		s["fsync"] = "off"
		s["synchronous_commit"] = "off"
		s["full_page_writes"] = "off"
	}
	for k, v := range c.opts.Settings {
		s[k] = v
	}
	out := make([]string, 0, len(s))
	for k, v := range s {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func (c *Cluster) checkVersion() error {
	b, err := os.ReadFile(filepath.Join(c.opts.DataDir, "PG_VERSION"))
	if err != nil {
		return fmt.Errorf("pgcluster: read PG_VERSION: %w", err)
	}
	have := strings.TrimSpace(string(b))
	if want := filepath.Base(filepath.Dir(c.bin)); isNumber(want) && want != have {
		return fmt.Errorf("pgcluster: data dir %s was created by PostgreSQL %s but the binaries in %s are version %s: upgrade it with pg_upgrade, or install postgresql-%s", c.opts.DataDir, have, c.bin, want, have)
	}
	return nil
}

// attachLocked points c at a postgres already running on the data dir,
// reading its port and socket directory from postmaster.pid. It reports
// whether there was one to attach to.
func (c *Cluster) attachLocked() bool {
	b, err := os.ReadFile(filepath.Join(c.opts.DataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 5 {
		return false
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	sock := strings.TrimSpace(lines[4])
	if pid <= 0 || !isPostgres(pid) || err != nil || sock == "" {
		return false
	}
	c.removeTmpSocket()
	c.tmpSocket = false
	c.socketDir, c.opts.Port = sock, port
	c.attached = true
	c.opts.Logger.Debug("attached to the running postgres", "data_dir", c.opts.DataDir, "pid", pid)
	return true
}

// Attached reports whether c uses a postgres some other process started.
func (c *Cluster) Attached() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attached
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// clearStalePID removes postmaster.pid when its postmaster is gone, and
// stops a live postgres still running on this data dir (left behind by a
// previous process that was killed), since only one may use it.
func (c *Cluster) clearStalePID(ctx context.Context) error {
	pidFile := filepath.Join(c.opts.DataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("pgcluster: read postmaster.pid: %w", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(firstLine(b)))
	if pid > 0 && isPostgres(pid) {
		c.opts.Logger.Warn("stopping a postgres left running on the data dir", "pid", pid, "data_dir", c.opts.DataDir)
		cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "pg_ctl"), "stop", "-D", c.opts.DataDir, "-m", "fast", "-w", "-t", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Env = c.env()
		cmd.Dir = c.opts.DataDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pgcluster: stop leftover postgres (pid %d): %w: %s", pid, err, tail(out, 1000))
		}
		return nil
	}
	c.opts.Logger.Info("removing stale postmaster.pid", "pid", pid, "data_dir", c.opts.DataDir)
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pgcluster: remove stale postmaster.pid: %w", err)
	}
	return nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// isPostgres reports whether pid is a live postgres process.
func isPostgres(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return false
	}
	name := strings.TrimSpace(string(comm))
	return name == "postgres" || name == "postmaster"
}

// waitReady polls postmaster.pid until the postmaster of pid reports
// "ready" (what pg_ctl -w does), postgres exits, or the timeout passes.
func (c *Cluster) waitReady(ctx context.Context, pid int, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	pidFile := filepath.Join(c.opts.DataDir, "postmaster.pid")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			lines := strings.Split(string(b), "\n")
			// Line 1 is the pid, line 8 the status (PostgreSQL >= 10).
			if len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(pid) && strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("pgcluster: postgres exited during startup: %s", c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: wait for postgres to accept connections: %w: %s", ctx.Err(), c.logTail())
		case <-tick.C:
		}
	}
}

func (c *Cluster) logTail() string { return c.ReadLog(2000) }

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Stop shuts postgres down with a fast shutdown (clients are disconnected,
// open transactions roll back, a checkpoint is written) and waits for it to
// exit. When ctx ends first it escalates to an immediate shutdown, then to
// SIGKILL. Stop on a stopped cluster is a no-op. The data dir is kept; a
// later Start reuses it.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked(ctx)
}

// Close stops the cluster (waiting up to one minute) and removes a socket
// directory Start created in the temp dir.
func (c *Cluster) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.Stop(ctx)
	c.removeTmpSocket()
	return err
}

func (c *Cluster) removeTmpSocket() {
	if c.tmpSocket {
		os.RemoveAll(c.socketDir)
	}
}

func (c *Cluster) stopLocked(ctx context.Context) error {
	if !c.runningLocked() {
		return nil
	}
	p, exited := c.proc.Process, c.exited
	// The wait goroutine takes c.mu to record the exit status.
	c.mu.Unlock()
	defer c.mu.Lock()
	_ = p.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-exited:
		c.opts.Logger.Info("postgres stopped", "data_dir", c.opts.DataDir)
		return nil
	case <-ctx.Done():
	}
	_ = p.Signal(syscall.SIGQUIT) // immediate shutdown: crash recovery on next start
	select {
	case <-exited:
		return fmt.Errorf("pgcluster: fast shutdown timed out, used immediate shutdown: %w", ctx.Err())
	case <-time.After(5 * time.Second):
	}
	_ = p.Kill()
	<-exited
	return fmt.Errorf("pgcluster: postgres did not shut down, killed it: %w", ctx.Err())
}

// startOnLockedThread starts cmd from a thread that never exits. Pdeathsig
// fires when the thread that forked the child exits, not the process, and
// Go may retire threads (a goroutine that ends while locked to its thread),
// so forking from an arbitrary thread could stop postgres at random.
func startOnLockedThread(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawnRequest)
		go func() { // lives as long as the process, by design
			runtime.LockOSThread()
			for r := range spawnReq {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReq <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnReq  chan spawnRequest
)

// ReadLog returns the end of the postgres server log (at most n bytes), for
// error messages and test failures.
func (c *Cluster) ReadLog(n int) string {
	b, _ := os.ReadFile(filepath.Join(c.opts.DataDir, "postgres.log"))
	return tail(b, n)
}
