package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/anycatch/anycatch/internal/browsertest"
	"github.com/anycatch/anycatch/internal/fixtures"
	"github.com/anycatch/anycatch/lab/labstack"
	"github.com/anycatch/anycatch/site"
)

// censusReport is the part of GET /targets/{t}/census the test reads.
type censusReport struct {
	Round struct {
		ID     int64     `json:"id"`
		Closes time.Time `json:"closes"`
	} `json:"round"`
	Summary struct {
		Prefixes  int `json:"prefixes"`
		MultiSite int `json:"multi_site"`
		Late      int `json:"late"`
		Sites     []struct {
			Site      string `json:"site"`
			Prefixes  int    `json:"prefixes"`
			ByCountry []struct {
				Key      string `json:"key"`
				Prefixes int    `json:"prefixes"`
			} `json:"by_country"`
		} `json:"sites"`
	} `json:"summary"`
	Previous *int64 `json:"previous_round"`
	Changes  []struct {
		Prefix   string `json:"prefix"`
		From, To string
	} `json:"changes"`
	Prefixes []struct {
		Prefix string   `json:"prefix"`
		Site   string   `json:"site"`
		RTT    *float64 `json:"rtt_ms"`
		Late   bool     `json:"late"`
	} `json:"prefixes"`
}

// censusTruth maps every client network (/24, /64) of the lab to the site
// the routers' truth names for its client (all networks of a client sit
// behind the same access link, so they share its route), and to the
// client's name.
func censusTruth(ctx context.Context, t *testing.T, s *labstack.Stack) (sites, clients map[string]string) {
	t.Helper()
	truth, err := s.Lab.Truth(ctx)
	if err != nil {
		t.Fatalf("truth: %v", err)
	}
	sites, clients = map[string]string{}, map[string]string{}
	for _, c := range s.Lab.Clients() {
		ct, _ := truth.Client(c.Name)
		for _, a := range c.Addrs4() {
			p := netip.PrefixFrom(a, 24).Masked().String()
			sites[p], clients[p] = ct.V4.Site, c.Name
		}
		for _, a := range c.Addrs6() {
			p := netip.PrefixFrom(a, 64).Masked().String()
			sites[p], clients[p] = ct.V6.Site, c.Name
		}
	}
	return sites, clients
}

// waitCensus polls round's census until every lab network is in it with
// the site the lab's truth names, and returns the report.
func waitCensus(ctx context.Context, t *testing.T, s *labstack.Stack, round int64, want map[string]string, limit time.Duration) censusReport {
	t.Helper()
	start := time.Now()
	var last []string
	for time.Since(start) < limit {
		var rep censusReport
		err := s.Get(ctx, fmt.Sprintf("/api/v1/targets/%s/census?round=%d&prefixes=true", s.Target, round), &rep)
		if err == nil {
			got := map[string]string{}
			for _, p := range rep.Prefixes {
				got[p.Prefix] = p.Site
			}
			last = nil
			for p, site := range want {
				if got[p] != site {
					last = append(last, fmt.Sprintf("%s: census %q, truth %q", p, got[p], site))
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok {
					last = append(last, p+": in the census but not a lab network")
				}
			}
			if last == nil {
				t.Logf("census round %d matches the lab's truth for all %d networks after %s", round, len(want), time.Since(start).Round(time.Millisecond))
				return rep
			}
		} else {
			last = []string{err.Error()}
		}
		time.Sleep(time.Second)
	}
	sort.Strings(last)
	t.Fatalf("census round %d did not match the lab's truth within %s:\n  %s", round, limit, strings.Join(last, "\n  "))
	return censusReport{}
}

func buildSiteAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "anycatch-site")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/anycatch-site")
	cmd.Dir = fixtures.ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build anycatch-site: %v\n%s", err, out)
	}
	return bin
}

func roundStats(t *testing.T, s *labstack.Stack, sender string, round int64) site.RoundStats {
	t.Helper()
	var st site.RoundStats
	b, err := os.ReadFile(filepath.Join(s.SiteStateDir(sender), "rounds", fmt.Sprintf("%d.json", round)))
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("round %d record of %s: %v %s", round, sender, err, b)
	}
	return st
}

// TestCensus runs the service-side census (Verfploeter) on the lab: one
// site sends echo requests from the anycast address to every lab network,
// every site reports the replies BGP brings it, and the census must equal
// the routers' truth, follow a withdrawal, agree with the volunteer
// probes, count late replies and survive a sender restart mid-round.
func TestCensus(t *testing.T) {
	requireLab(t)
	siteBin := buildSiteAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	s := startStack(ctx, t, "c", labstack.Options{
		SiteBin: siteBin, Census: true,
	})
	// The probes' catchment first: the census is compared with it.
	waitCatchment(ctx, t, s, 4, 90*time.Second)
	waitCatchment(ctx, t, s, 6, 30*time.Second)
	exp, err := s.Expect(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	busiest := busiestSite(exp)
	sender := ""
	for _, st := range s.Lab.Sites() {
		if st.Code != busiest {
			sender = st.Code
			break
		}
	}
	want, clientOf := censusTruth(ctx, t, s)
	t.Logf("census: %d lab networks, sender %s, busiest site %s", len(want), sender, busiest)

	// Round 1, with the busiest site's agent paused through the round:
	// the kernel queues its replies, it reads them after the round
	// closed, and they count (late) instead of being lost.
	var round1 int64
	deadline := time.Now().Add(60 * time.Second)
	for {
		round1, err = s.CensusRound(ctx, sender, 20, 12*time.Second, 10*time.Minute)
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "no enrolled census agent") {
			break
		}
		time.Sleep(time.Second) // the sender's agent is still enrolling
	}
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // every agent has polled the schedule (every 2 s)
	if err := s.PauseSite(busiest, true); err != nil {
		t.Fatal(err)
	}
	var rep censusReport
	if err := s.Get(ctx, fmt.Sprintf("/api/v1/targets/%s/census?round=%d", s.Target, round1), &rep); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(rep.Round.Closes) + time.Second)
	if err := s.PauseSite(busiest, false); err != nil {
		t.Fatal(err)
	}
	rep = waitCensus(ctx, t, s, round1, want, 60*time.Second)
	busiestNets := 0
	for _, site := range want {
		if site == busiest {
			busiestNets++
		}
	}
	if rep.Summary.Late < busiestNets {
		t.Errorf("round %d: %d late replies, want at least the %d networks of the paused %s", round1, rep.Summary.Late, busiestNets, busiest)
	}
	rtts := 0
	for _, p := range rep.Prefixes {
		if p.RTT != nil {
			rtts++
			if p.Site != sender {
				t.Errorf("%s at %s has an RTT; only the sender %s measures one", p.Prefix, p.Site, sender)
			}
		}
	}
	t.Logf("round %d: %d networks, %d late (paused %s), %d with sender RTT, by site %+v", round1, rep.Summary.Prefixes, rep.Summary.Late, busiest, rtts, rep.Summary.Sites)
	st := roundStats(t, s, sender, round1)
	t.Logf("SEND RATE round %d: %d probes, configured %d/s, measured %.2f/s", round1, st.Sent, st.ConfiguredPPS, st.MeasuredPPS)
	if st.Sent != len(want) || st.MeasuredPPS > float64(st.ConfiguredPPS)*1.01 || st.MeasuredPPS < float64(st.ConfiguredPPS)*0.5 {
		t.Errorf("round %d send: %+v (want %d probes at most %d/s)", round1, st, len(want), st.ConfiguredPPS)
	}

	// Every lab network is geolocated (labstack's GeoIP databases): the
	// per-country split and the map's census layer have all of them.
	for _, st := range rep.Summary.Sites {
		for _, c := range st.ByCountry {
			if c.Key == "unknown" {
				t.Errorf("site %s: %d networks without a country", st.Site, c.Prefixes)
			}
		}
	}
	censusMap(ctx, t, s)

	// The census and the volunteer probes agree where both see: each
	// probe's identified site is the census site of its client's first
	// network.
	for af, bits := range map[int]int{4: 24, 6: 64} {
		got, err := s.Catchment(ctx, af)
		if err != nil {
			t.Fatal(err)
		}
		both := 0
		for _, c := range s.Lab.Clients() {
			o, ok := got[c.Name]
			if !ok || o.State != "site" {
				continue // unidentified (a silent site) or not measured: only the census sees it
			}
			a := c.V4
			if af == 6 {
				a = c.V6
			}
			p := netip.PrefixFrom(a, bits).Masked().String()
			if census := siteOf(rep, p); census != o.Site {
				t.Errorf("IPv%d %s: probe at %s, census says %s", af, c.Name, o.Site, census)
			}
			both++
		}
		t.Logf("IPv%d: census and probes agree on all %d clients both see", af, both)
	}

	// Withdraw the busiest site: the next round shows its networks at the
	// sites truth names, and lists them as changes. The sender restarts
	// mid-round (SIGTERM while sending) and must still cover every network.
	if err := s.Lab.Withdraw(ctx, busiest); err != nil {
		t.Fatal(err)
	}
	limit := time.Duration(interval)*time.Second + 15*time.Second
	waitCatchment(ctx, t, s, 4, limit)
	waitCatchment(ctx, t, s, 6, limit)
	want2, _ := censusTruth(ctx, t, s)
	round2, err := s.CensusRound(ctx, sender, 10, 40*time.Second, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(site.SenderDelay + 2500*time.Millisecond) // the sender is part-way through its 48 probes at 10/s (4.8 s)
	record := filepath.Join(s.SiteStateDir(sender), "rounds", fmt.Sprintf("%d.json", round2))
	if _, err := os.Stat(record); err == nil {
		t.Fatalf("round %d already sent before the restart: the test no longer restarts mid-round", round2)
	}
	s.StopSite(sender, false)
	if err := s.StartSite(sender, ""); err != nil {
		t.Fatal(err)
	}
	rep2 := waitCensus(ctx, t, s, round2, want2, 90*time.Second)
	if rep2.Previous == nil || *rep2.Previous != round1 {
		t.Errorf("round %d compares with %v, want %d", round2, rep2.Previous, round1)
	}
	moved := map[string]bool{}
	for _, m := range rep2.Changes {
		moved[m.Prefix] = true
		if m.From != busiest || m.To != want2[m.Prefix] {
			t.Errorf("change %+v: want from %s to %s", m, busiest, want2[m.Prefix])
		}
	}
	for p, site := range want {
		if site == busiest && !moved[p] {
			t.Errorf("%s (%s) was at %s: no change listed", p, clientOf[p], busiest)
		}
	}
	t.Logf("round %d: %d networks moved off %s (sender restarted mid-round)", round2, len(rep2.Changes), busiest)
	st2 := roundStats(t, s, sender, round2)
	t.Logf("SEND RATE round %d (after restart): %d probes, configured %d/s, measured %.2f/s", round2, st2.Sent, st2.ConfiguredPPS, st2.MeasuredPPS)
	if st2.Sent != len(want2) || st2.MeasuredPPS > float64(st2.ConfiguredPPS)*1.01 {
		t.Errorf("round %d sent at %.2f/s, above the configured %d/s", round2, st2.MeasuredPPS, st2.ConfiguredPPS)
	}
	if err := s.Lab.Restore(ctx, busiest); err != nil {
		t.Fatal(err)
	}
}

func siteOf(rep censusReport, prefix string) string {
	for _, p := range rep.Prefixes {
		if p.Prefix == prefix {
			return p.Site
		}
	}
	return ""
}

// censusMap opens the map and checks its census layer draws every feature
// of the census GeoJSON, with all located networks, then saves a
// screenshot.
func censusMap(ctx context.Context, t *testing.T, s *labstack.Stack) {
	t.Helper()
	var fc struct {
		Features []struct {
			Properties struct {
				Site     string `json:"site"`
				Prefixes int    `json:"prefixes"`
			} `json:"properties"`
		} `json:"features"`
	}
	if err := s.Get(ctx, "/api/v1/targets/"+s.Target+"/census?format=geojson", &fc); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range fc.Features {
		total += f.Properties.Prefixes
	}
	if len(fc.Features) == 0 {
		t.Fatal("census GeoJSON has no points")
	}
	b := browsertest.New(t)
	b.Do(t, chromedp.Navigate(s.URL+"/#/map?target="+s.Target))
	b.Do(t, chromedp.WaitVisible(chromedp.CSS(`#census-toggle`)))
	type point struct {
		Site     string
		Prefixes int
	}
	pts := browsertest.Eval[[]point](t, b, `window.anycatch.census.points.map(p => ({Site: p.site, Prefixes: p.prefixes}))`)
	drawn := 0
	for _, p := range pts {
		drawn += p.Prefixes
	}
	if len(pts) != len(fc.Features) || drawn != total {
		t.Errorf("census layer: %d points with %d networks, GeoJSON has %d with %d", len(pts), drawn, len(fc.Features), total)
	}
	t.Logf("census layer: %d points, %d located networks", len(pts), drawn)
	b.AssertLocalOnly(t, s.URL)
	b.Screenshot(t, "e2e-census-map")
}
