package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure Up and Open. The zero value brings up instance "acl"
// with state in /run/anycatch-lab/acl, daemons re-executed from this
// binary, and every lab process killed if this process dies.
type Options struct {
	// Name is the instance name (1-8 of [a-z0-9]); "" means "acl". Every
	// namespace is "<Name>-<node>", so instances with different names never
	// collide.
	Name string
	// StateDir holds configs, logs, sockets and state.json; "" means
	// /run/anycatch-lab/<Name>.
	StateDir string
	// BinPath is the binary started for the delay and forward daemons; ""
	// means this executable (any binary importing package lab can serve as
	// the daemon, see RunDaemon).
	BinPath string
	// Detach lets the lab's processes outlive this process, as the CLI's
	// 'up' needs. Zero means they get SIGKILL when this process dies.
	Detach bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// ConvergeTimeout bounds the wait for BGP and NSD after start; zero
	// means 30s.
	ConvergeTimeout time.Duration
}

func (o *Options) setDefaults() error {
	if o.Name == "" {
		o.Name = "acl"
	}
	if err := ValidName(o.Name); err != nil {
		return err
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join("/run/anycatch-lab", o.Name)
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	o.StateDir = abs
	if o.BinPath == "" {
		if o.BinPath, err = os.Executable(); err != nil {
			return fmt.Errorf("find own binary: %w", err)
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ConvergeTimeout == 0 {
		o.ConvergeTimeout = 30 * time.Second
	}
	return nil
}

// ErrExists is returned by Up when the instance already has state or
// namespaces.
var ErrExists = errors.New("lab instance already exists")

// ErrNotUp is returned by Open when the instance has no state.
var ErrNotUp = errors.New("lab instance is not up")

// Lab is a running lab instance.
type Lab struct {
	topo *Topology
	plan *Plan
	opts Options

	mu    sync.Mutex
	st    state
	waits map[int]<-chan struct{} // our children, closed on exit
}

// state is what down needs after this process is gone: state.json.
type state struct {
	Name          string       `json:"name"`
	StateDir      string       `json:"state_dir"`
	Created       time.Time    `json:"created"`
	Namespaces    []string     `json:"namespaces"`
	Procs         []procRecord `json:"procs"`
	CollectorPort int          `json:"collector_port,omitempty"`
	Ready         bool         `json:"ready"`
}

type procRecord struct {
	PID  int    `json:"pid"`
	Role string `json:"role"` // bird, nsd, delay, forward
	Node string `json:"node"`
}

func (l *Lab) statePath() string { return filepath.Join(l.opts.StateDir, "state.json") }

func (l *Lab) saveLocked() error {
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return os.Rename(tmp, l.statePath())
}

func (l *Lab) logf(format string, args ...any) {
	fmt.Fprintf(l.opts.Log, format+"\n", args...)
}

// Up builds and starts the lab described by topo (nil means
// DefaultTopology) and waits until every client has a BGP route to the
// anycast prefixes and every site's NSD answers. On failure it removes
// whatever it created. It refuses (ErrExists) if the instance already
// has state or namespaces; Down it first.
func Up(ctx context.Context, topo *Topology, opts Options) (_ *Lab, err error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	if err := Preflight(); err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	if topo == nil {
		topo = DefaultTopology()
	}
	if err := topo.Validate(); err != nil {
		return nil, fmt.Errorf("up: topology: %w", err)
	}
	plan, err := topo.Plan(opts.Name)
	if err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	if _, err := os.Stat(filepath.Join(opts.StateDir, "state.json")); err == nil {
		return nil, fmt.Errorf("up: %w: %s has state (run 'anycatch-lab down --name %s')", ErrExists, opts.StateDir, opts.Name)
	}
	if ns := namespacesWithPrefix(opts.Name + "-"); len(ns) > 0 {
		return nil, fmt.Errorf("up: %w: namespaces %s exist (run 'anycatch-lab down --name %s')", ErrExists, strings.Join(ns, " "), opts.Name)
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	l := &Lab{topo: topo, plan: plan, opts: opts, waits: map[int]<-chan struct{}{},
		st: state{Name: opts.Name, StateDir: opts.StateDir, Created: time.Now().UTC()}}
	defer func() {
		if err != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if derr := l.Down(dctx); derr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup: %w", derr))
			}
		}
	}()
	l.mu.Lock()
	err = l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	y, err := topo.YAML()
	if err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	if err := os.WriteFile(filepath.Join(opts.StateDir, "topology.yaml"), y, 0o644); err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	start := time.Now()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"namespaces", l.createNamespaces},
		{"links", l.createLinks},
		{"addresses", l.configureAddresses},
		{"daemons", l.startRouting},
		{"converge", l.waitConverged},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("up: %s: %w", s.name, err)
		}
		l.logf("%-11s %v", s.name, time.Since(t0).Round(time.Millisecond))
	}
	l.mu.Lock()
	l.st.Ready = true
	err = l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	l.logf("lab %s up in %v (state %s)", opts.Name, time.Since(start).Round(time.Millisecond), opts.StateDir)
	return l, nil
}

// Open attaches to a lab that an earlier Up (possibly another process)
// left running, from its state dir.
func Open(opts Options) (*Lab, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	l := &Lab{opts: opts, waits: map[int]<-chan struct{}{}}
	b, err := os.ReadFile(l.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open: %w: no %s", ErrNotUp, l.statePath())
	}
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if err := json.Unmarshal(b, &l.st); err != nil {
		return nil, fmt.Errorf("open: state: %w", err)
	}
	if l.topo, err = LoadTopology(filepath.Join(opts.StateDir, "topology.yaml")); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if l.plan, err = l.topo.Plan(opts.Name); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return l, nil
}

func (l *Lab) addNamespace(ns string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Namespaces = append(l.st.Namespaces, ns)
	_ = l.saveLocked()
}

func (l *Lab) createNamespaces(ctx context.Context) error {
	for _, ns := range l.plan.Namespaces() {
		if _, err := run(ctx, nil, "ip", "netns", "add", ns); err != nil {
			return err
		}
		l.addNamespace(ns)
	}
	// Sysctls are per namespace: write them from a thread inside each.
	for _, n := range l.plan.Nodes {
		sys := map[string]string{
			"net/ipv6/conf/all/accept_dad":     "0",
			"net/ipv6/conf/default/accept_dad": "0",
			"net/ipv4/icmp_ratelimit":          "0", // traceroute needs every hop to answer
			"net/ipv6/icmp/ratelimit":          "0",
		}
		switch n.Kind {
		case KindTransit:
			sys["net/ipv4/ip_forward"] = "1"
			sys["net/ipv6/conf/all/forwarding"] = "1"
		case KindClient:
			// Lets unprivileged probes use ICMP datagram sockets here.
			sys["net/ipv4/ping_group_range"] = "0 2147483647"
		}
		if err := writeSysctls(n.NS, sys); err != nil {
			return err
		}
	}
	return writeSysctls(l.plan.MgmtNS, map[string]string{"net/ipv6/conf/all/disable_ipv6": "1"})
}

func writeSysctls(ns string, kv map[string]string) error {
	return inNetns(ns, func() error {
		for k, v := range kv {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				return fmt.Errorf("sysctl %s in %s: %w", k, ns, err)
			}
		}
		return nil
	})
}

func (l *Lab) ns(node string) string {
	n, _ := l.plan.Node(node)
	return n.NS
}

func (l *Lab) createLinks(ctx context.Context) error {
	// veth pairs are created directly inside the lab namespaces, never in
	// the host's.
	var lines []string
	for _, k := range l.plan.Links {
		if !k.TUN() {
			lines = append(lines, fmt.Sprintf("link add %s netns %s type veth peer name %s netns %s", k.IfA, l.ns(k.A), k.IfB, l.ns(k.B)))
		}
	}
	for _, c := range l.plan.Nodes {
		if c.Kind == KindClient {
			lines = append(lines, fmt.Sprintf("link add mgmt netns %s type veth peer name m-%s netns %s", c.NS, c.Name, l.plan.MgmtNS))
		}
	}
	if err := ipBatch(ctx, "", lines); err != nil {
		return err
	}
	// One delay daemon per delayed link; they start in parallel.
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(l.plan.Links))
	)
	for i, k := range l.plan.Links {
		if !k.TUN() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.startDaemon(k.A+"-"+k.B, "delay",
				"--ns-a", l.ns(k.A), "--if-a", k.IfA, "--ns-b", l.ns(k.B), "--if-b", k.IfB,
				"--delay-ab", k.DelayAB.String(), "--delay-ba", k.DelayBA.String())
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startDaemon starts one of our own daemons (delay, forward) and records it.
func (l *Lab) startDaemon(node, role string, args ...string) error {
	argv := append([]string{l.opts.BinPath, role, "--instance", l.opts.Name, "--state-dir", l.opts.StateDir}, args...)
	return l.start(node, role, argv, []string{daemonEnv + "=1"}, true)
}

func (l *Lab) start(node, role string, argv, env []string, ready bool) error {
	logDir := filepath.Join(l.opts.StateDir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	cmd, done, err := startProc(startOpts{
		argv: argv, env: env, ready: ready, detach: l.opts.Detach,
		logPath: filepath.Join(logDir, role+"-"+node+".log"),
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", role, node, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits[cmd.Process.Pid] = done
	l.st.Procs = append(l.st.Procs, procRecord{PID: cmd.Process.Pid, Role: role, Node: node})
	return l.saveLocked()
}

func (l *Lab) configureAddresses(ctx context.Context) error {
	batches := map[string][]string{}
	for _, n := range l.plan.Nodes {
		batches[n.NS] = append(batches[n.NS], "link set lo up")
	}
	end := func(ns, ifname string, a4, a6 netip.Prefix) {
		batches[ns] = append(batches[ns],
			fmt.Sprintf("addr add %s dev %s", a4, ifname),
			fmt.Sprintf("addr add %s dev %s nodad", a6, ifname),
			fmt.Sprintf("link set %s up", ifname))
	}
	for _, k := range l.plan.Links {
		end(l.ns(k.A), k.IfA, k.A4, k.A6)
		end(l.ns(k.B), k.IfB, k.B4, k.B6)
	}
	mg := l.plan.MgmtNS
	batches[mg] = append(batches[mg], "link set lo up", "link add br0 type bridge",
		fmt.Sprintf("addr add %s dev br0", netip.PrefixFrom(l.plan.MgmtAddr, MgmtPrefix.Bits())), "link set br0 up")
	for _, n := range l.plan.Nodes {
		switch n.Kind {
		case KindSite:
			batches[n.NS] = append(batches[n.NS],
				fmt.Sprintf("addr add %s dev lo", netip.PrefixFrom(l.topo.Anycast.V4, 32)),
				fmt.Sprintf("addr add %s dev lo", netip.PrefixFrom(l.topo.Anycast.V6, 128)))
		case KindClient:
			batches[n.NS] = append(batches[n.NS],
				fmt.Sprintf("route add default via %s dev uplink", n.GW4),
				fmt.Sprintf("route add default via %s dev uplink", n.GW6),
				fmt.Sprintf("addr add %s dev mgmt", netip.PrefixFrom(n.Mgmt, MgmtPrefix.Bits())),
				"link set mgmt up")
			batches[mg] = append(batches[mg], fmt.Sprintf("link set m-%s master br0", n.Name), fmt.Sprintf("link set m-%s up", n.Name))
			// Extra client networks: the client's address on its uplink,
			// the transit's .1/::1 on its c-<client> link (which BIRD's
			// direct protocol announces). The IPv6 ones are deprecated
			// (preferred_lft 0): they answer and can be bound, but IPv6
			// source selection never picks them, so probes keep using
			// V6 and routers answer from the access network as before
			// (IPv4 picks the gateway's subnet by itself).
			tr := l.ns(n.Transit)
			for k := range n.Extra4 {
				a4, a6 := n.Extra4[k], n.Extra6[k]
				batches[n.NS] = append(batches[n.NS], fmt.Sprintf("addr add %s dev uplink", netip.PrefixFrom(a4, 24)),
					fmt.Sprintf("addr add %s dev uplink nodad preferred_lft 0", netip.PrefixFrom(a6, 64)))
				batches[tr] = append(batches[tr], fmt.Sprintf("addr add %s dev c-%s", netip.PrefixFrom(a4.Prev(), 24), n.Name),
					fmt.Sprintf("addr add %s dev c-%s nodad preferred_lft 0", netip.PrefixFrom(a6.Prev(), 64), n.Name))
			}
		}
	}
	for _, ns := range l.plan.Namespaces() {
		if err := ipBatch(ctx, ns, batches[ns]); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) nodeDir(node string) string { return filepath.Join(l.opts.StateDir, node) }

func (l *Lab) birdSocket(node string) string { return filepath.Join(l.nodeDir(node), "bird.ctl") }

func (l *Lab) startRouting(ctx context.Context) error {
	for _, n := range l.plan.Nodes {
		if n.Kind == KindClient {
			continue
		}
		dir := l.nodeDir(n.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		conf, err := birdConfig(l.topo, l.plan, n.Name)
		if err != nil {
			return err
		}
		cpath := filepath.Join(dir, "bird.conf")
		if err := os.WriteFile(cpath, []byte(conf), 0o644); err != nil {
			return err
		}
		if err := l.start(n.Name, "bird", []string{"ip", "netns", "exec", n.NS,
			"bird", "-f", "-c", cpath, "-s", l.birdSocket(n.Name), "-P", filepath.Join(dir, "bird.pid")}, nil, false); err != nil {
			return err
		}
		if n.Kind == KindSite {
			s, _ := l.topo.Site(n.Name)
			npath := filepath.Join(dir, "nsd.conf")
			if err := os.WriteFile(npath, []byte(nsdConfig(l.topo, s, dir)), 0o644); err != nil {
				return err
			}
			if err := l.start(n.Name, "nsd", []string{"ip", "netns", "exec", n.NS, "nsd", "-d", "-c", npath}, nil, false); err != nil {
				return err
			}
			if err := l.startDaemon(n.Name, "siteweb", "--ns", n.NS,
				"--addrs", l.topo.Anycast.V4.String()+","+l.topo.Anycast.V6.String(),
				"--header", s.HTTPHeader, "--trace-colo", s.TraceColo, "--ntp-refid", s.NTPRefID); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitConverged waits until every site's NSD answers on the anycast
// address and two truth readings in a row agree with every client routed.
func (l *Lab) waitConverged(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.ConvergeTimeout)
	defer cancel()
	for _, s := range l.topo.Sites {
		for {
			_, err := l.QueryIdentity(ctx, s.Code, l.topo.Anycast.V4)
			if err == nil {
				break
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return fmt.Errorf("nsd on %s not answering: %w (see %s)", s.Code, err, filepath.Join(l.nodeDir(s.Code), "nsd.log"))
			}
		}
	}
	// Converged means every BGP session is established (BIRD sends
	// updates as soon as a session is up, so routes settle within
	// milliseconds after that) and three truth readings in a row agree
	// with every client routed both ways. Agreement alone is not enough:
	// while one site's session is still connecting, readings can agree on
	// a catchment that changes as soon as it comes up.
	var prev *Truth
	stable := 0
	for {
		t, err := l.Truth(ctx)
		if err == nil && t.Complete() && l.sessionsEstablished(ctx) {
			if prev != nil && prev.sameCatchment(t) {
				stable++
			} else {
				stable = 0
			}
			if stable >= 2 {
				return nil
			}
			prev = &t
		} else {
			prev, stable = nil, 0
		}
		if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
			return fmt.Errorf("bgp did not converge: %w (see birdc -s %s show protocols)", err, l.birdSocket(l.topo.Transits[0].Name))
		}
	}
}

// sessionsEstablished reports whether every BGP session of the lab is up.
func (l *Lab) sessionsEstablished(ctx context.Context) bool {
	st, err := l.Status(ctx)
	if err != nil || len(st.Sessions) == 0 {
		return false
	}
	for _, s := range st.Sessions {
		if s.Info != "Established" {
			return false
		}
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Down stops every process of the lab and deletes its namespaces and state
// dir. It is idempotent and also cleans up after a crash: besides the
// recorded PIDs and namespaces it kills the lab's daemons found by their
// --instance argument and deletes every namespace named "<Name>-*".
func (l *Lab) Down(ctx context.Context) error {
	l.mu.Lock()
	st := l.st
	waits := l.waits
	l.waits = map[int]<-chan struct{}{}
	l.mu.Unlock()
	err := down(ctx, l.opts.Name, l.opts.StateDir, &st)
	for _, w := range waits { // reap our children (bounded: all were killed)
		select {
		case <-w:
		case <-time.After(2 * time.Second):
		}
	}
	return err
}

// Down removes instance opts.Name whether or not it has state.
func Down(ctx context.Context, opts Options) error {
	if err := opts.setDefaults(); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	var st *state
	if b, err := os.ReadFile(filepath.Join(opts.StateDir, "state.json")); err == nil {
		st = new(state)
		if err := json.Unmarshal(b, st); err != nil {
			st = nil
		}
	}
	return down(ctx, opts.Name, opts.StateDir, st)
}

func down(ctx context.Context, name, stateDir string, st *state) error {
	var errs []error
	var pids []int
	var namespaces []string
	if st != nil {
		for _, p := range st.Procs {
			if ownedBy(p.PID, name, stateDir) {
				pids = append(pids, p.PID)
			}
		}
		namespaces = append(namespaces, st.Namespaces...)
	}
	pids = append(pids, daemonPIDs(name)...)
	for _, ns := range namespacesWithPrefix(name + "-") {
		if !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	for _, ns := range namespaces {
		pids = append(pids, netnsPIDs(ctx, ns)...)
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)
	if err := killAll(pids, 3*time.Second); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range namespaces {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		if _, err := run(ctx, nil, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && stateDir != "" && stateDir != "/" {
		if err := os.RemoveAll(stateDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	return nil
}

// Command returns a command that runs argv inside node's namespace (via
// ip netns exec). node may be any site, transit, client, or "mgmt".
func (l *Lab) Command(node string, argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.Namespace(node)}, argv...)...)
}

// CommandContext is Command bound to ctx.
func (l *Lab) CommandContext(ctx context.Context, node string, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Namespace(node)}, argv...)...)
}

// Exec runs argv inside node's namespace and returns its combined output.
func (l *Lab) Exec(ctx context.Context, node string, argv ...string) ([]byte, error) {
	if _, ok := l.plan.Node(node); !ok && node != "mgmt" {
		return nil, fmt.Errorf("exec: unknown node %q", node)
	}
	out, err := l.CommandContext(ctx, node, argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("exec on %s: %s: %w", node, strings.Join(argv, " "), err)
	}
	return out, nil
}

// birdc runs one BIRD CLI command on a router.
func (l *Lab) birdc(ctx context.Context, node string, cmd ...string) (string, error) {
	out, err := run(ctx, nil, "birdc", append([]string{"-s", l.birdSocket(node)}, cmd...)...)
	return string(out), err
}

// Withdraw stops site's BGP announcement of the anycast prefixes (both
// families) by disabling the static protocols that originate them. The
// site's BGP sessions stay up, so it still routes replies.
func (l *Lab) Withdraw(ctx context.Context, site string) error {
	return l.setAnnounce(ctx, site, "disable")
}

// Restore re-announces the anycast prefixes from site.
func (l *Lab) Restore(ctx context.Context, site string) error {
	return l.setAnnounce(ctx, site, "enable")
}

func (l *Lab) setAnnounce(ctx context.Context, site, verb string) error {
	if n, ok := l.plan.Node(site); !ok || n.Kind != KindSite {
		return fmt.Errorf("%s: %q is not a site", verb, site)
	}
	for _, p := range []string{anycastProto4, anycastProto6} {
		out, err := l.birdc(ctx, site, verb, p)
		if err != nil {
			return fmt.Errorf("%s %s on %s: %w", verb, p, site, err)
		}
		if !strings.Contains(out, p+": ") {
			return fmt.Errorf("%s %s on %s: unexpected birdc reply %q", verb, p, site, out)
		}
	}
	return nil
}

// ForwardCollector starts the collector forwarder: it listens on
// MgmtAddr():port inside the mgmt namespace and proxies each TCP connection
// to 127.0.0.1:port in the host namespace, where the collector runs.
// Probes in clients then reach the collector at the returned address.
func (l *Lab) ForwardCollector(ctx context.Context, port int) (netip.AddrPort, error) {
	if port < 1 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("forward collector: bad port %d", port)
	}
	ap := netip.AddrPortFrom(l.plan.MgmtAddr, uint16(port))
	err := l.startDaemon("mgmt", "forward", "--ns", l.plan.MgmtNS,
		"--listen", ap.String(), "--target", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("forward collector: %w", err)
	}
	l.mu.Lock()
	l.st.CollectorPort = port
	err = l.saveLocked()
	l.mu.Unlock()
	return ap, err
}

// Name is the instance name.
func (l *Lab) Name() string { return l.opts.Name }

// StateDir is where configs, logs and sockets live.
func (l *Lab) StateDir() string { return l.opts.StateDir }

// Topology is the lab's effective topology (defaults applied).
func (l *Lab) Topology() *Topology { return l.topo }

// Plan is the lab's address plan.
func (l *Lab) Plan() *Plan { return l.plan }

// Namespace is the netns name of node ("mgmt" for the management
// namespace), or "" for an unknown node.
func (l *Lab) Namespace(node string) string {
	if node == "mgmt" {
		return l.plan.MgmtNS
	}
	return l.ns(node)
}

// ClientInfo is a client with its namespace and addresses.
type ClientInfo struct {
	Client
	Namespace string     `json:"namespace"`
	V4        netip.Addr `json:"v4"`
	V6        netip.Addr `json:"v6"`
	Mgmt      netip.Addr `json:"mgmt"` // on the management network
	// Extra networks behind the client (Client.Nets - 1): its address in
	// each; they route like V4/V6.
	Extra4 []netip.Addr `json:"extra4,omitempty"`
	Extra6 []netip.Addr `json:"extra6,omitempty"`
}

// Addrs4 lists all the client's IPv4 addresses, V4 first.
func (c ClientInfo) Addrs4() []netip.Addr { return append([]netip.Addr{c.V4}, c.Extra4...) }

// Addrs6 lists all the client's IPv6 addresses, V6 first.
func (c ClientInfo) Addrs6() []netip.Addr { return append([]netip.Addr{c.V6}, c.Extra6...) }

// Clients lists the clients in topology order.
func (l *Lab) Clients() []ClientInfo {
	out := make([]ClientInfo, 0, len(l.topo.Clients))
	for _, c := range l.topo.Clients {
		n, _ := l.plan.Node(c.Name)
		out = append(out, ClientInfo{Client: c, Namespace: n.NS, V4: n.V4, V6: n.V6, Mgmt: n.Mgmt, Extra4: n.Extra4, Extra6: n.Extra6})
	}
	return out
}

// Sites lists the anycast sites in topology order.
func (l *Lab) Sites() []Site { return slices.Clone(l.topo.Sites) }

// AnycastV4 is the IPv4 service address every site answers on.
func (l *Lab) AnycastV4() netip.Addr { return l.topo.Anycast.V4 }

// AnycastV6 is the IPv6 service address every site answers on.
func (l *Lab) AnycastV6() netip.Addr { return l.topo.Anycast.V6 }

// MgmtAddr is the address the collector forwarder listens on inside the
// management network (198.19.255.1).
func (l *Lab) MgmtAddr() netip.Addr { return l.plan.MgmtAddr }
