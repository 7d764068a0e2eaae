package labstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CensusHitlist is the name of the hitlist file the stack writes for the
// census: every address of every lab client (all their networks).
const CensusHitlist = "lab.txt"

// censusMaxPPS is the lab target's census ceiling.
const censusMaxPPS = 1000

// HitlistDir is where the stack's site agents find hitlists.
func (s *Stack) HitlistDir() string { return filepath.Join(s.opts.WorkDir, "hitlists") }

// SiteStateDir is where the site agent of a site keeps its state.
func (s *Stack) SiteStateDir(site string) string {
	return filepath.Join(s.opts.WorkDir, "site-"+site)
}

// startCensus opts the lab target into the census, writes the hitlist and
// starts one anycatch-site agent per lab site. Agents run in the host
// namespace (so they reach the server on loopback) with their raw sockets
// in their site's namespace (--netns), where the anycast address lives.
func (s *Stack) startCensus(ctx context.Context) error {
	if err := s.do(ctx, "PUT", "/api/v1/targets/"+s.Target+"/census", map[string]any{"enabled": true, "max_pps": censusMaxPPS}, nil); err != nil {
		return fmt.Errorf("labstack: enable census: %w", err)
	}
	if err := os.MkdirAll(s.HitlistDir(), 0o755); err != nil {
		return fmt.Errorf("labstack: %w", err)
	}
	var b strings.Builder
	b.WriteString("# every network of every lab client (written by labstack)\n")
	for _, c := range s.Lab.Clients() {
		for _, a := range append(c.Addrs4(), c.Addrs6()...) {
			b.WriteString(a.String() + "\n")
		}
	}
	if err := os.WriteFile(filepath.Join(s.HitlistDir(), CensusHitlist), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("labstack: write hitlist: %w", err)
	}
	for _, site := range s.Lab.Sites() {
		var tok struct {
			Token string `json:"token"`
		}
		if err := s.do(ctx, "POST", "/api/v1/targets/"+s.Target+"/census/sites/"+site.Code+"/token", nil, &tok); err != nil {
			return fmt.Errorf("labstack: site token for %s: %w", site.Code, err)
		}
		if err := s.StartSite(site.Code, tok.Token); err != nil {
			return err
		}
	}
	s.logf("%d site agents started (census)", len(s.Lab.Sites()))
	return nil
}

// StartSite starts the site agent of a site; token is needed only for the
// first start (later starts use the identity in its state directory).
func (s *Stack) StartSite(site, token string) error {
	logf, err := os.OpenFile(filepath.Join(s.opts.WorkDir, "site-"+site+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("labstack: %w", err)
	}
	args := []string{"--collector", s.URL, "--state-dir", s.SiteStateDir(site), "--hitlist-dir", s.HitlistDir(),
		"--netns", s.Lab.Namespace(site), "--max-pps", strconv.Itoa(censusMaxPPS), "--upload-every", "1s",
		"--note", "anycatch lab census"}
	if token != "" {
		args = append(args, "--enroll-token", token)
	}
	p, err := startProcess(exec.Command(s.opts.SiteBin, args...), logf)
	if err != nil {
		return fmt.Errorf("labstack: start site agent %s: %w", site, err)
	}
	s.mu.Lock()
	s.sites[site] = p
	s.mu.Unlock()
	return nil
}

// StopSite stops the site agent of a site (SIGTERM: it spools what it
// captured); kill sends SIGKILL instead, as a crash would.
func (s *Stack) StopSite(site string, kill bool) {
	s.mu.Lock()
	p := s.sites[site]
	delete(s.sites, site)
	s.mu.Unlock()
	if p == nil {
		return
	}
	if kill {
		_ = p.cmd.Process.Kill()
		<-p.done
		return
	}
	p.stop(20 * time.Second)
}

// CensusRound starts a census round from sender over the lab hitlist and
// returns its id. The lab's client networks are /24 and /64.
func (s *Stack) CensusRound(ctx context.Context, sender string, ratePPS int, duration, late time.Duration) (int64, error) {
	var out struct {
		ID int64 `json:"id"`
	}
	err := s.do(ctx, "POST", "/api/v1/targets/"+s.Target+"/census/rounds", map[string]any{
		"sender": sender, "hitlist": CensusHitlist, "rate_pps": ratePPS, "prefix4": 24, "prefix6": 64,
		"duration": duration.String(), "late_window": late.String()}, &out)
	if err != nil {
		return 0, fmt.Errorf("labstack: census round: %w", err)
	}
	return out.ID, nil
}

// PauseSite stops (SIGSTOP) or resumes (SIGCONT) the site agent of a
// site. While it is stopped the kernel queues the replies its socket
// receives; it reads them when resumed, as a slow agent would.
func (s *Stack) PauseSite(site string, pause bool) error {
	s.mu.Lock()
	p := s.sites[site]
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("labstack: no site agent at %s", site)
	}
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	return p.cmd.Process.Signal(sig)
}
