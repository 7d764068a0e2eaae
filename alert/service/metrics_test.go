package service

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/anycatch/anycatch/alert"
)

// TestMetricsCardinalityBounded feeds a target with 150 configured sites,
// probes at 300 site codes (150 of them not configured, as a regex rule
// could produce) and moves to 500 distinct unmapped identities: the site
// label must take at most MaxSiteLabels configured codes plus _other and
// _unidentified, and the output must parse as Prometheus text.
func TestMetricsCardinalityBounded(t *testing.T) {
	ti := TargetInfo{ID: 1, Name: "big", IntervalSec: 60, Enabled: true}
	for i := range 150 {
		ti.Sites = append(ti.Sites, fmt.Sprintf("s%03d", i))
	}
	var counts []Count
	for i := range 300 {
		rtt := float64(i)
		counts = append(counts, Count{AF: 4, State: "site", Site: fmt.Sprintf("s%03d", i), Probes: 1, MedianRTT: &rtt})
	}
	counts = append(counts, Count{AF: 4, State: "unidentified", Probes: 500}, Count{AF: 6, State: "unreachable", Probes: 7})
	m := newMetrics()
	var snap metricsSnapshot
	snap.at = time.Unix(1796300000, 0)
	snap.add(ti, counts)
	m.set(snap)
	var moves []alert.Move
	for i := range 500 {
		moves = append(moves, alert.Move{AF: 4, Probe: fmt.Sprintf("p%d", i), From: fmt.Sprintf("s%03d", i%300), To: fmt.Sprintf("?ident-%d", i)})
	}
	m.countMoves(ti, moves)

	s := &Service{metrics: m}
	rec := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics/catchment", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	sites := map[string]bool{}
	series := 0
	for name, f := range fams {
		for _, mt := range f.GetMetric() {
			series++
			for _, l := range mt.GetLabel() {
				if l.GetName() == "site" {
					sites[l.GetValue()] = true
				}
				if strings.Contains(l.GetValue(), "ident-") || strings.HasPrefix(l.GetValue(), "p") {
					t.Errorf("%s has an unbounded label value %q", name, l.GetValue())
				}
			}
		}
	}
	if len(sites) > MaxSiteLabels+2 || !sites[SiteOther] || !sites[SiteUnidentified] || sites["s100"] || !sites["s099"] {
		t.Errorf("%d site label values (want at most %d, with _other and _unidentified, s099 but not s100)", len(sites), MaxSiteLabels+2)
	}
	// The documented bound: per target 2 families x (100 + 2) sites x 5
	// site metrics + 2 x 3 target metrics, plus the timestamp.
	if limit := 2*(MaxSiteLabels+2)*5 + 2*3 + 1; series > limit {
		t.Errorf("%d series, documented bound %d", series, limit)
	}
	var other float64
	for _, mt := range fams["anycatch_catchment_probes"].GetMetric() {
		for _, l := range mt.GetLabel() {
			if l.GetName() == "site" && l.GetValue() == SiteOther {
				other += mt.GetGauge().GetValue()
			}
		}
	}
	if other != 200 {
		t.Errorf("_other holds %v probes, want the 200 beyond the first 100 configured sites", other)
	}
	t.Logf("%d series, %d site label values", series, len(sites))
}
