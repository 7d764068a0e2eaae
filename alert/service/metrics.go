package service

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/anycatch/anycatch/alert"
)

// Site label values besides configured site codes. Label values come only
// from the targets' configured sites (at most MaxSiteLabels per target) and
// these two, so a rule producing arbitrary site codes or a flood of
// unmapped identities cannot grow the series count.
const (
	SiteOther        = "_other"        // identified, but not a configured site (or beyond MaxSiteLabels)
	SiteUnidentified = "_unidentified" // for change counters: moves to or from an unmapped identity
	MaxSiteLabels    = 100
)

// metrics holds what the last evaluation counted; a scrape only reads it.
type metrics struct {
	mu       sync.Mutex
	snap     metricsSnapshot
	gained   map[seriesKey]float64
	lost     map[seriesKey]float64
	firing   map[[2]string]int
	delivery map[string]float64
}

type seriesKey struct {
	target, site string
	af           int
}

type siteCount struct {
	probes int
	rtt    *float64 // median ms; nil for merged groups
}

type metricsSnapshot struct {
	at      time.Time
	sites   map[seriesKey]siteCount
	total   map[seriesKey]int // site ""
	unident map[seriesKey]int
	unreach map[seriesKey]int
}

func newMetrics() *metrics {
	return &metrics{gained: map[seriesKey]float64{}, lost: map[seriesKey]float64{}, delivery: map[string]float64{}}
}

// label maps a place (site code or "?identity") to its bounded label.
func label(t TargetInfo, place string) string {
	if strings.HasPrefix(place, "?") {
		return SiteUnidentified
	}
	if i := slices.Index(t.Sites, place); i >= 0 && i < MaxSiteLabels {
		return place
	}
	return SiteOther
}

func (s *metricsSnapshot) add(t TargetInfo, counts []Count) {
	if s.sites == nil {
		s.sites, s.total, s.unident, s.unreach = map[seriesKey]siteCount{}, map[seriesKey]int{}, map[seriesKey]int{}, map[seriesKey]int{}
	}
	for _, af := range []int{4, 6} {
		s.total[seriesKey{t.Name, "", af}] += 0 // every target and family gets its series, zero or not
	}
	for _, c := range counts {
		k := seriesKey{t.Name, "", c.AF}
		s.total[k] += c.Probes
		switch c.State {
		case "unidentified":
			s.unident[k] += c.Probes
		case "unreachable":
			s.unreach[k] += c.Probes
		case "site":
			sk := seriesKey{t.Name, label(t, c.Site), c.AF}
			prev, merged := s.sites[sk]
			sc := siteCount{probes: prev.probes + c.Probes, rtt: c.MedianRTT}
			if merged {
				sc.rtt = nil // a median of merged groups is unknown
			}
			s.sites[sk] = sc
		}
	}
	// Configured sites without probes report 0, so a lost site is a 0
	// series, not a vanished one (alerting rules can see it).
	for i, site := range t.Sites {
		if i >= MaxSiteLabels {
			break
		}
		for _, af := range []int{4, 6} {
			if _, ok := s.sites[seriesKey{t.Name, site, af}]; !ok {
				s.sites[seriesKey{t.Name, site, af}] = siteCount{}
			}
		}
	}
}

func (m *metrics) set(s metricsSnapshot) {
	m.mu.Lock()
	m.snap = s
	m.mu.Unlock()
}

func (m *metrics) setFiring(f map[[2]string]int) {
	if f == nil {
		return
	}
	m.mu.Lock()
	m.firing = f
	m.mu.Unlock()
}

func (m *metrics) countMoves(t TargetInfo, moves []alert.Move) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mv := range moves {
		if mv.From != "" {
			m.lost[seriesKey{t.Name, label(t, mv.From), mv.AF}]++
		}
		if mv.To != "" {
			m.gained[seriesKey{t.Name, label(t, mv.To), mv.AF}]++
		}
	}
}

func (m *metrics) countDelivery(state string) {
	m.mu.Lock()
	m.delivery[state]++
	m.mu.Unlock()
}

var (
	descProbes = prometheus.NewDesc("anycatch_catchment_probes",
		"Probes whose current catchment is the site (tracks observed within three measurement intervals).",
		[]string{"target", "site", "af"}, nil)
	descShare = prometheus.NewDesc("anycatch_catchment_share_ratio",
		"Share (0-1) of the target's observed probes caught by the site.", []string{"target", "site", "af"}, nil)
	descRTT = prometheus.NewDesc("anycatch_catchment_rtt_median_seconds",
		"Median of the latest RTTs of the probes caught by the site.", []string{"target", "site", "af"}, nil)
	descObserved = prometheus.NewDesc("anycatch_catchment_observed_probes",
		"Probes with a current observation of the target.", []string{"target", "af"}, nil)
	descUnident = prometheus.NewDesc("anycatch_catchment_unidentified_probes",
		"Probes answered by an identity no rule maps to a site.", []string{"target", "af"}, nil)
	descUnreach = prometheus.NewDesc("anycatch_catchment_unreachable_probes",
		"Probes that get no answer from the target.", []string{"target", "af"}, nil)
	descGained = prometheus.NewDesc("anycatch_catchment_probes_gained_total",
		"Probes that moved to the site (catchment changes) seen by this server since it started.", []string{"target", "site", "af"}, nil)
	descLost = prometheus.NewDesc("anycatch_catchment_probes_lost_total",
		"Probes that moved away from the site seen by this server since it started.", []string{"target", "site", "af"}, nil)
	descFiring = prometheus.NewDesc("anycatch_alerts_firing",
		"Alerts currently firing.", []string{"target", "kind"}, nil)
	descDeliveries = prometheus.NewDesc("anycatch_webhook_deliveries_total",
		"Webhook notifications finished, by outcome.", []string{"state"}, nil)
	descEval = prometheus.NewDesc("anycatch_catchment_evaluated_timestamp_seconds",
		"When these catchment metrics were last computed (Unix time).", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProbes, descShare, descRTT, descObserved, descUnident, descUnreach, descGained, descLost, descFiring, descDeliveries, descEval} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	af := func(k seriesKey) string { return strconv.Itoa(k.af) }
	s := m.snap
	if s.at.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(descEval, prometheus.GaugeValue, float64(s.at.UnixMilli())/1000)
	for k, c := range s.sites {
		ch <- prometheus.MustNewConstMetric(descProbes, prometheus.GaugeValue, float64(c.probes), k.target, k.site, af(k))
		share := 0.0
		if t := s.total[seriesKey{k.target, "", k.af}]; t > 0 {
			share = float64(c.probes) / float64(t)
		}
		ch <- prometheus.MustNewConstMetric(descShare, prometheus.GaugeValue, share, k.target, k.site, af(k))
		if c.rtt != nil {
			ch <- prometheus.MustNewConstMetric(descRTT, prometheus.GaugeValue, *c.rtt/1000, k.target, k.site, af(k))
		}
	}
	for k, n := range s.total {
		ch <- prometheus.MustNewConstMetric(descObserved, prometheus.GaugeValue, float64(n), k.target, af(k))
		ch <- prometheus.MustNewConstMetric(descUnident, prometheus.GaugeValue, float64(s.unident[k]), k.target, af(k))
		ch <- prometheus.MustNewConstMetric(descUnreach, prometheus.GaugeValue, float64(s.unreach[k]), k.target, af(k))
	}
	for k, v := range m.gained {
		ch <- prometheus.MustNewConstMetric(descGained, prometheus.CounterValue, v, k.target, k.site, af(k))
	}
	for k, v := range m.lost {
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, v, k.target, k.site, af(k))
	}
	for k, n := range m.firing {
		ch <- prometheus.MustNewConstMetric(descFiring, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	for st, n := range m.delivery {
		ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, n, st)
	}
}

// MetricsHandler serves the catchment metrics in the Prometheus text
// format, from the last evaluation (a scrape never queries the database).
// It has its own registry so it can be mounted wherever the server's
// metrics live (/metrics/catchment).
func (s *Service) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.metrics)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
