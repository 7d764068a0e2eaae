package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/lab/labstack"
	"github.com/anycatch/anycatch/measure"
)

// TestIdentifyBeyondCHAOS runs the lab with its sites answering HTTP and
// NTP in different styles and the silent site gru answering nothing, and
// checks, for both address families:
//   - every probe of every site is mapped, gru's by the trace_hop rule;
//   - the catchment names the source that mapped each probe;
//   - DNS identity, HTTP and trace results each name the right site on
//     their own (NTP too);
//   - the speed-of-light check finds nothing wrong with the lab's real
//     coordinates, and flags a site given deliberately wrong ones.
func TestIdentifyBeyondCHAOS(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := startStack(ctx, t, "i", labstack.Options{})
	rules, order, err := labstack.Rules()
	if err != nil {
		t.Fatal(err)
	}
	idf, err := catchment.NewIdentifier(order, rules)
	if err != nil {
		t.Fatal(err)
	}
	silent := map[string]bool{}
	for _, site := range s.Lab.Sites() {
		silent[site.Code] = site.HideIdentity && site.NSID == ""
	}

	start := time.Now()
	for _, af := range []int{4, 6} {
		took, got := waitCatchment(ctx, t, s, af, 120*time.Second)
		t.Logf("IPv%d: every probe mapped %s after start (%s since the first family)", af, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		exp, err := s.Expect(ctx, af)
		if err != nil {
			t.Fatal(err)
		}
		// The catchment says which evidence named the site: gru's probes
		// by the trace hop, the others by DNS identity, the strongest
		// source, which their sites all answer. The first result of a
		// probe may be another kind's: wait for the strongest to arrive.
		wantFamily := func(site string) string {
			if silent[site] {
				return catchment.SourceTraceHop
			}
			return "dns"
		}
		var sources map[string]int
		var bad []string
		for deadline := time.Now().Add(3 * interval * time.Second); ; {
			sources, bad = map[string]int{}, nil
			for client, e := range exp {
				o := got[client]
				switch {
				case e.State != "site" || o.Site != e.Site:
					bad = append(bad, fmt.Sprintf("%s: got %s %q, want site %q", client, o.State, o.Site, e.Site))
				case family(o.Source) != wantFamily(e.Site):
					bad = append(bad, fmt.Sprintf("%s at %s: source %q, want a %s source", client, o.Site, o.Source, wantFamily(e.Site)))
				}
				sources[o.Source]++
			}
			if bad == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
			if got, err = s.Catchment(ctx, af); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range bad {
			t.Errorf("IPv%d %s", af, b)
		}
		for client, e := range exp {
			checkSources(ctx, t, s, idf, client, af, e.Site, silent[e.Site])
		}
		t.Logf("IPv%d sources naming the catchment: %v", af, sources)
		if sources[catchment.SourceTraceHop] == 0 {
			t.Errorf("IPv%d: no probe mapped by trace_hop", af)
		}
	}

	// Speed of light. The check must flag exactly the (probe, site) pairs
	// whose configured lab delays are faster than light over the real
	// distance: with the default lab that is par1 (Paris) at 0 ms from ams
	// (Amsterdam, 430 km away), a shortcut the lab takes; nothing else.
	sol := speedOfLight(ctx, t, s)
	t.Logf("speed of light: %d results checked, %d impossible; flags %+v", sol.Checked, sol.Impossible, sol.Flags)
	if sol.Checked == 0 {
		t.Fatal("speed of light: nothing checked")
	}
	checkFlags(ctx, t, s, sol, nil)
	// Put sin (Singapore) in Reykjavik: its probes' replies cannot have
	// come from there, and the check says so for sin, per probe and site.
	sin := "sin"
	moved := map[string]catchment.Point{sin: {Lat: 64.13, Lon: -21.9}}
	if err := s.Put(ctx, "/api/v1/targets/"+s.Target+"/sites/"+sin, map[string]any{"code": sin, "name": "Singapore (wrong)", "lat": 64.13, "lon": -21.9}, nil); err != nil {
		t.Fatalf("move site: %v", err)
	}
	sol = speedOfLight(ctx, t, s)
	t.Logf("with sin at Reykjavik: %d impossible of %d; flags %+v", sol.Impossible, sol.Checked, sol.Flags)
	flagged := map[string]int{}
	for _, f := range sol.Flags {
		flagged[f.Site] += f.Impossible
	}
	if flagged[sin] == 0 {
		t.Errorf("wrong coordinates: got flags per site %v, want %s flagged", flagged, sin)
	}
	for _, c := range sol.Sites {
		if c.Site == sin && (c.Impossible == 0 || c.Impossible > c.Checked) {
			t.Errorf("site count %+v", c)
		}
	}
	checkFlags(ctx, t, s, sol, moved)
}

// checkFlags compares the report's flagged (probe, site) pairs with the
// pairs the lab's configured delays make impossible (sites at coordinates
// moved, when given). Measured RTTs are the configured ones plus a little
// overhead, so a pair is required to be flagged when its configured RTT
// plus 2 ms is still too fast, and allowed to be flagged only when its
// configured RTT is.
func checkFlags(ctx context.Context, t *testing.T, s *labstack.Stack, sol api.SpeedOfLightReport, moved map[string]catchment.Point) {
	t.Helper()
	siteAt := map[string]catchment.Point{}
	for _, site := range s.Lab.Sites() {
		siteAt[site.Code] = catchment.Point{Lat: site.Lat, Lon: site.Lon}
	}
	for code, p := range moved {
		siteAt[code] = p
	}
	type pair struct{ client, site string }
	must, may := map[pair]bool{}, map[pair]bool{}
	byProbe := map[string]string{}
	for _, af := range []int{4, 6} {
		exp, err := s.Expect(ctx, af)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Lab.Clients() {
			byProbe[s.ProbeID(c.Name)] = c.Name
			e := exp[c.Name]
			at := catchment.Point{Lat: c.Lat, Lon: c.Lon}
			rtt := float64(e.RTT) / float64(time.Millisecond)
			k := pair{c.Name, e.Site}
			if catchment.Impossible(at, siteAt[e.Site], rtt+2) {
				must[k] = true
			}
			if catchment.Impossible(at, siteAt[e.Site], max(rtt, 0.001)) {
				may[k] = true
			}
		}
	}
	got := map[pair]bool{}
	for _, f := range sol.Flags {
		k := pair{byProbe[f.Probe], f.Site}
		got[k] = true
		if !may[k] {
			t.Errorf("flagged %s at %s (%.0f km, fastest %.2f ms), but the lab's delays allow it", k.client, k.site, f.DistanceKm, f.MinRTT)
		}
	}
	for k := range must {
		if !got[k] {
			t.Errorf("%s at %s: the lab's delays are faster than light, but nothing is flagged", k.client, k.site)
		}
	}
	t.Logf("flagged pairs %v (required %v)", keys(got), keys(must))
}

func keys[K comparable](m map[K]bool) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	return out
}

// family groups a source as the catchment's precedence does.
func family(source string) string {
	switch f, _, _ := strings.Cut(source, ":"); f {
	case catchment.SourceHostnameBind, catchment.SourceIDServer, catchment.SourceNSID:
		return "dns"
	default:
		return f
	}
}

// checkSources checks that each kind of measurement of client over af, on
// its own, names site through the lab's rules.
func checkSources(ctx context.Context, t *testing.T, s *labstack.Stack, idf *catchment.Identifier, client string, af int, site string, silent bool) {
	t.Helper()
	type want struct {
		kind   measure.Kind
		family string // "" when this kind cannot name the site
	}
	wants := []want{{measure.KindIdentity, "dns"}, {measure.KindHTTP, "http_header|http_body"}, {measure.KindNTP, catchment.SourceNTPRefID}, {measure.KindTrace, ""}}
	if silent {
		wants = []want{{measure.KindIdentity, ""}, {measure.KindHTTP, ""}, {measure.KindNTP, ""}, {measure.KindTrace, catchment.SourceTraceHop}}
	}
	var named []string
	for _, w := range wants {
		r := latestResult(ctx, t, s, client, w.kind, af)
		if r == nil {
			t.Errorf("IPv%d %s: no %s result", af, client, w.kind)
			continue
		}
		m := idf.IdentifyResult(r)
		if w.family == "" {
			if m.State == catchment.StateSite && m.Site != site {
				t.Errorf("IPv%d %s: %s result names %q from %s, but the probe is at %s", af, client, w.kind, m.Site, m.Source, site)
			}
			continue
		}
		if m.Site != site || !strings.Contains("|"+w.family+"|", "|"+family(m.Source)+"|") {
			t.Errorf("IPv%d %s: %s result names %q from %q, want %q from %s (result %s)", af, client, w.kind, m.Site, m.Source, site, w.family, brief(r))
			continue
		}
		named = append(named, fmt.Sprintf("%s:%s", w.kind, m.Source))
	}
	t.Logf("IPv%d %s at %s named by %v", af, client, site, named)
}

func brief(r *measure.Result) string {
	switch {
	case r.HTTP != nil:
		return fmt.Sprintf("http status %d error %q headers %v", r.HTTP.Status, r.HTTP.Error, r.HTTP.Headers)
	case r.NTP != nil:
		return fmt.Sprintf("ntp %+v", *r.NTP)
	case r.Trace != nil:
		var hops []string
		for _, h := range r.Trace.Hops {
			for _, p := range h.Probes {
				hops = append(hops, p.From)
			}
		}
		return fmt.Sprintf("trace reached %v hops %v", r.Trace.Reached, hops)
	case r.DNS != nil && r.DNS.Identity != nil:
		return fmt.Sprintf("identity %+v", *r.DNS.Identity)
	}
	return r.Error
}

func speedOfLight(ctx context.Context, t *testing.T, s *labstack.Stack) api.SpeedOfLightReport {
	t.Helper()
	var rep api.SpeedOfLightReport
	from := time.Now().Add(-30 * time.Minute).UTC().Format(time.RFC3339)
	if err := s.Get(ctx, "/api/v1/targets/"+s.Target+"/speed-of-light?from="+from, &rep); err != nil {
		t.Fatalf("speed-of-light: %v", err)
	}
	return rep
}
