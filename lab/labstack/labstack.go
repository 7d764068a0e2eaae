// Package labstack runs the whole anycatch platform on an anycast lab: the
// lab itself, anycatch-server on the host's loopback (reachable from every
// lab client through the lab's management forwarder), an anycast target
// with the lab's sites and identity rules, and one anycatch-probe agent in
// every client namespace. The end-to-end test and `anycatch-lab demo` both
// use it, so what the quick start shows is what CI checks.
//
// It drives the real binaries and the public HTTP API only; it needs root.
package labstack

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/catchment/rulesets"
	"github.com/anycatch/anycatch/lab"
	"github.com/anycatch/anycatch/measure"
)

//go:embed rules.yaml
var rulesYAML []byte

// Rules returns the identity rules for the default lab's sites.
func Rules() ([]catchment.Rule, []string, error) {
	svcs, err := rulesets.Parse(rulesYAML)
	if err != nil {
		return nil, nil, fmt.Errorf("lab rules: %w", err)
	}
	s := rulesets.Find(svcs, "lab")
	if s == nil {
		return nil, nil, errors.New("lab rules: no service named lab")
	}
	return s.Rules, s.IdentityOrder, nil
}

// Options configures a stack. The zero value is not enough: ServerBin and
// ProbeBin are required.
type Options struct {
	Name        string        // lab instance name (1–8 of [a-z0-9]); "" means "stack"
	Topology    *lab.Topology // nil means lab.DefaultTopology()
	ServerBin   string        // path to anycatch-server
	ProbeBin    string        // path to anycatch-probe
	DatabaseURL string        // "" runs the server's embedded PostgreSQL in DataDir
	DataDir     string        // server data dir for the embedded database; "" means WorkDir/server
	WorkDir     string        // probe state dirs and logs; required
	Listen      string        // server address on the host; "" picks a free 127.0.0.1 port
	Target      string        // target name; "" means "lab"
	IntervalSec int           // target measurement interval; 0 means 10
	Log         io.Writer     // progress lines; nil discards
	// EnrollRate is the server's --enroll-rate; 0 means -1 (unlimited):
	// every lab probe enrolls through one forwarder address.
	EnrollRate int
}

// Stack is a running platform on a lab.
type Stack struct {
	Lab       *lab.Lab
	URL       string // server base URL on the host, e.g. http://127.0.0.1:41234
	Collector string // collector URL as the probes see it
	AdminKey  string
	Target    string

	opts   Options
	server *process

	mu     sync.Mutex
	probes map[string]*process // by client name
}

// process is a started child and a channel closed when it has exited.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProcess(cmd *exec.Cmd, logf *os.File) (*process, error) {
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM and waits up to d, then kills. It reports whether the
// process stopped on its own.
func (p *process) stop(d time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

func (o *Options) defaults() error {
	if o.ServerBin == "" || o.ProbeBin == "" {
		return errors.New("labstack: ServerBin and ProbeBin are required")
	}
	if o.WorkDir == "" {
		return errors.New("labstack: WorkDir is required")
	}
	if o.Name == "" {
		o.Name = "stack"
	}
	if o.Topology == nil {
		o.Topology = lab.DefaultTopology()
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(o.WorkDir, "server")
	}
	if o.Target == "" {
		o.Target = "lab"
	}
	if o.IntervalSec == 0 {
		o.IntervalSec = 10
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Start brings up the lab, the server, the target and a probe per client.
// On error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("labstack: %w", err)
	}
	s := &Stack{opts: opts, Target: opts.Target, probes: map[string]*process{}}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_ = s.Stop(ctx)
		}
	}()

	s.logf("bringing up the anycast lab %q", opts.Name)
	_ = lab.Down(ctx, lab.Options{Name: opts.Name}) // leftovers of a crashed run
	s.Lab, err = lab.Up(ctx, opts.Topology, lab.Options{Name: opts.Name})
	if err != nil {
		return nil, fmt.Errorf("labstack: lab up: %w", err)
	}

	if err := s.startServer(ctx); err != nil {
		return nil, err
	}
	if err := s.createTarget(ctx); err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(s.URL[strings.LastIndexByte(s.URL, ':')+1:])
	ap, err := s.Lab.ForwardCollector(ctx, port)
	if err != nil {
		return nil, fmt.Errorf("labstack: forward collector: %w", err)
	}
	s.Collector = "http://" + ap.String()

	token, err := s.createToken(ctx, len(s.Lab.Clients()))
	if err != nil {
		return nil, err
	}
	for _, c := range s.Lab.Clients() {
		if err := s.startProbe(c, token); err != nil {
			return nil, err
		}
	}
	s.logf("%d probes started; they enroll at %s", len(s.Lab.Clients()), s.Collector)
	return s, nil
}

func (s *Stack) logf(format string, a ...any) {
	fmt.Fprintf(s.opts.Log, "labstack: "+format+"\n", a...)
}

// dbArgs are the database flags shared by serve and the admin subcommands.
func (s *Stack) dbArgs() []string {
	if s.opts.DatabaseURL != "" {
		return []string{"--database-url", s.opts.DatabaseURL}
	}
	return []string{"--database-url", "", "--data-dir", s.opts.DataDir}
}

func (s *Stack) startServer(ctx context.Context) error {
	listen := s.opts.Listen
	if listen == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("labstack: pick a port: %w", err)
		}
		listen = l.Addr().String()
		l.Close()
	}
	s.URL = "http://" + listen

	// A bootstrap admin key: the server creates it (hashed) at start when
	// ANYCATCH_BOOTSTRAP_ADMIN_KEY is set, so no second process needs to
	// open the database while the server runs.
	s.AdminKey = newAdminKey()
	logf, err := os.Create(filepath.Join(s.opts.WorkDir, "server.log"))
	if err != nil {
		return fmt.Errorf("labstack: %w", err)
	}
	enrollRate := s.opts.EnrollRate
	if enrollRate == 0 {
		enrollRate = -1
	}
	args := append([]string{"serve", "--listen", listen, "--anonymous-read",
		"--probe-cap-per-addr", "-1", "--enroll-rate", strconv.Itoa(enrollRate), "--schedule-refresh", "15"}, s.dbArgs()...)
	cmd := exec.Command(s.opts.ServerBin, args...)
	cmd.Env = append(os.Environ(), "ANYCATCH_BOOTSTRAP_ADMIN_KEY="+s.AdminKey)
	s.logf("starting %s", strings.Join(append([]string{s.opts.ServerBin}, args...), " "))
	if s.server, err = startProcess(cmd, logf); err != nil {
		return fmt.Errorf("labstack: start server: %w", err)
	}

	deadline := time.Now().Add(90 * time.Second)
	for {
		var h struct{ Status string }
		if err := s.do(ctx, "GET", "/healthz", nil, &h); err == nil && h.Status == "ok" {
			s.logf("server up at %s", s.URL)
			return nil
		}
		select {
		case <-s.server.done:
			return fmt.Errorf("labstack: server exited during start-up (%v); see %s", s.server.cmd.ProcessState, logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("labstack: server not healthy after 90 s; see %s", logf.Name())
		}
	}
}

func (s *Stack) createTarget(ctx context.Context) error {
	rules, order, err := Rules()
	if err != nil {
		return err
	}
	target := map[string]any{
		"name":           s.Target,
		"description":    "anycast DNS service of the anycatch lab",
		"addr4":          s.Lab.AnycastV4().String(),
		"addr6":          s.Lab.AnycastV6().String(),
		"interval_sec":   s.opts.IntervalSec,
		"identity_order": order,
		"specs": []measure.Spec{
			{Kind: measure.KindIdentity, DNS: &measure.DNSSpec{TimeoutMS: 1000, Retries: 1}},
			{Kind: measure.KindPing, Ping: &measure.PingSpec{Count: 3, IntervalMS: 200, TimeoutMS: 1500}},
			{Kind: measure.KindTrace, Trace: &measure.TraceSpec{MaxHops: 16, ProbesPerHop: 1, TimeoutMS: 1000}},
		},
	}
	err = s.do(ctx, "POST", "/api/v1/targets", target, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		// A data directory from an earlier run (the demo's): bring the
		// target up to date instead.
		err = s.do(ctx, "PATCH", "/api/v1/targets/"+s.Target, target, nil)
	}
	if err != nil {
		return fmt.Errorf("labstack: create target: %w", err)
	}
	for _, site := range s.Lab.Sites() {
		body := map[string]any{"code": site.Code, "name": site.Name, "lat": site.Lat, "lon": site.Lon}
		if err := s.do(ctx, "PUT", "/api/v1/targets/"+s.Target+"/sites/"+site.Code, body, nil); err != nil {
			return fmt.Errorf("labstack: create site %s: %w", site.Code, err)
		}
	}
	if err := s.do(ctx, "PUT", "/api/v1/targets/"+s.Target+"/rules", map[string]any{"data": rules}, nil); err != nil {
		return fmt.Errorf("labstack: set rules: %w", err)
	}
	s.logf("target %s: %s and %s, %d sites, %d identity rules, every %d s",
		s.Target, s.Lab.AnycastV4(), s.Lab.AnycastV6(), len(s.Lab.Sites()), len(rules), s.opts.IntervalSec)
	return nil
}

func (s *Stack) createToken(ctx context.Context, uses int) (string, error) {
	var out struct {
		Secret string `json:"secret"`
	}
	err := s.do(ctx, "POST", "/api/v1/admin/tokens", map[string]any{"name": "lab probes", "max_uses": uses, "ttl": "1h"}, &out)
	if err != nil {
		return "", fmt.Errorf("labstack: create enrollment token: %w", err)
	}
	return out.Secret, nil
}

// ProbeStateDir is where the probe of a client keeps its state.
func (s *Stack) ProbeStateDir(client string) string {
	return filepath.Join(s.opts.WorkDir, "probe-"+client)
}

func (s *Stack) startProbe(c lab.ClientInfo, token string) error {
	logf, err := os.Create(filepath.Join(s.opts.WorkDir, "probe-"+c.Name+".log"))
	if err != nil {
		return fmt.Errorf("labstack: %w", err)
	}
	cmd := s.Lab.Command(c.Name, s.opts.ProbeBin, "run",
		"--collector", s.Collector, "--enroll-token", token,
		"--state-dir", s.ProbeStateDir(c.Name), "--allow-private", "--min-interval-sec", "5",
		"--lat", strconv.FormatFloat(c.Lat, 'f', 4, 64), "--lon", strconv.FormatFloat(c.Lon, 'f', 4, 64))
	p, err := startProcess(cmd, logf)
	if err != nil {
		return fmt.Errorf("labstack: start probe in %s: %w", c.Name, err)
	}
	s.mu.Lock()
	s.probes[c.Name] = p
	s.mu.Unlock()
	return nil
}

// ProbeID returns the probe id the collector gave the probe of client, or
// "" while it has not enrolled yet.
func (s *Stack) ProbeID(client string) string {
	b, err := os.ReadFile(filepath.Join(s.ProbeStateDir(client), "identity.json"))
	if err != nil {
		return ""
	}
	var id struct {
		Probe string `json:"probe"`
	}
	if json.Unmarshal(b, &id) != nil {
		return ""
	}
	return id.Probe
}

// Get fetches an API path (with the admin key) and decodes the JSON answer.
func (s *Stack) Get(ctx context.Context, path string, out any) error {
	return s.do(ctx, "GET", path, nil, out)
}

// apiError is a non-2xx answer of the server's API.
type apiError struct {
	Status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func (s *Stack) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.AdminKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.AdminKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{Status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// Stop ends the probes (SIGTERM, so they spool what is in flight), the
// server (which stops its embedded database) and the lab. It is safe to
// call more than once.
func (s *Stack) Stop(ctx context.Context) error {
	var errs []error
	s.mu.Lock()
	probes := s.probes
	s.probes = map[string]*process{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	var emu sync.Mutex
	for name, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.stop(40 * time.Second) {
				emu.Lock()
				errs = append(errs, fmt.Errorf("probe %s did not stop on SIGTERM", name))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if s.server != nil {
		if !s.server.stop(45 * time.Second) {
			errs = append(errs, errors.New("server did not stop on SIGTERM"))
		}
		s.server = nil
	}
	if s.Lab != nil {
		if err := s.Lab.Down(ctx); err != nil {
			errs = append(errs, err)
		}
		s.Lab = nil
	}
	return errors.Join(errs...)
}

// newAdminKey returns a fresh key in the API's key format
// ("ack_<8 hex>_<43 base64url>").
func newAdminKey() string {
	var id [4]byte
	var body [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(err)
	}
	if _, err := rand.Read(body[:]); err != nil {
		panic(err)
	}
	return "ack_" + hex.EncodeToString(id[:]) + "_" + base64.RawURLEncoding.EncodeToString(body[:])
}

// Observed is one probe's catchment as the API reports it.
type Observed struct {
	Probe      string    `json:"probe"`
	AF         int       `json:"af"`
	State      string    `json:"state"`
	Site       string    `json:"site"`
	Identity   string    `json:"identity"`
	RTT        *float64  `json:"rtt_ms"`
	ObservedAt time.Time `json:"observed_at"`
}

// Catchment returns the API's current per-probe catchment for an address
// family, keyed by lab client name (probes not yet enrolled are missing).
func (s *Stack) Catchment(ctx context.Context, af int) (map[string]Observed, error) {
	var c struct {
		Probes []Observed `json:"probes"`
	}
	if err := s.Get(ctx, fmt.Sprintf("/api/v1/targets/%s/catchment?af=%d", s.Target, af), &c); err != nil {
		return nil, err
	}
	byProbe := map[string]Observed{}
	for _, o := range c.Probes {
		if o.AF == af {
			byProbe[o.Probe] = o
		}
	}
	out := map[string]Observed{}
	for _, cl := range s.Lab.Clients() {
		if o, ok := byProbe[s.ProbeID(cl.Name)]; ok && s.ProbeID(cl.Name) != "" {
			out[cl.Name] = o
		}
	}
	return out, nil
}

// Expected is what the catchment of one client should be according to the
// lab's routers: the site its best path leads to, and the state the
// platform can know (a site that answers no identity at all shows as
// unidentified).
type Expected struct {
	Site  string // the site code BGP picked ("" = no route)
	State string // "site", "unidentified" or "unreachable"
	RTT   time.Duration
}

// Expect reads the lab's truth for an address family, keyed by client.
func (s *Stack) Expect(ctx context.Context, af int) (map[string]Expected, error) {
	truth, err := s.Lab.Truth(ctx)
	if err != nil {
		return nil, err
	}
	silent := map[string]bool{}
	for _, site := range s.Lab.Sites() {
		silent[site.Code] = site.HideIdentity && site.NSID == ""
	}
	out := map[string]Expected{}
	for _, ct := range truth.Clients {
		p := ct.V4
		if af == 6 {
			p = ct.V6
		}
		e := Expected{Site: p.Site, State: "site", RTT: time.Duration(p.ExpectedRTT)}
		switch {
		case p.Site == "":
			e.State = "unreachable"
		case silent[p.Site]:
			e.State = "unidentified"
		}
		out[ct.Client] = e
	}
	return out, nil
}

// Mismatches compares the API's catchment with the lab's truth and
// describes every client where they differ; nil means they agree.
func Mismatches(exp map[string]Expected, got map[string]Observed) []string {
	var out []string
	for client, e := range exp {
		o, ok := got[client]
		switch {
		case !ok:
			out = append(out, client+": no observation yet")
		case o.State != e.State:
			out = append(out, fmt.Sprintf("%s: state %s (site %q), want %s (site %q)", client, o.State, o.Site, e.State, e.Site))
		case e.State == "site" && o.Site != e.Site:
			out = append(out, fmt.Sprintf("%s: site %s, want %s", client, o.Site, e.Site))
		}
	}
	return out
}
