package collector

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collector's Prometheus metrics in their own registry.
type Metrics struct {
	reg          *prometheus.Registry
	lines        *prometheus.CounterVec // verdict
	rejected     *prometheus.CounterVec // reason class
	uploads      *prometheus.CounterVec // outcome
	batchRows    prometheus.Histogram
	commitSecs   prometheus.Histogram
	queueDepth   prometheus.Gauge
	enrollments  *prometheus.CounterVec // outcome
	authFailures *prometheus.CounterVec // reason
	live         prometheus.Gauge       // connected live channels
	livePushes   *prometheus.CounterVec // kind
	census       *prometheus.CounterVec // verdict, reason class
}

func newMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "result_lines_total",
			Help: "Uploaded result lines by verdict (accepted, duplicate, rejected).",
		}, []string{"verdict"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "rejected_lines_total",
			Help: "Rejected result lines by reason class.",
		}, []string{"reason"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "uploads_total",
			Help: "Result uploads by outcome (ok, overloaded, unavailable, invalid).",
		}, []string{"outcome"}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "batch_rows",
			Help:    "Rows per store batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "commit_seconds",
			Help:    "Store batch commit latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "queued_rows",
			Help: "Rows waiting for the store.",
		}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "enrollments_total",
			Help: "Enrollment attempts by outcome (ok, bad_token, limit, rate_limited, error).",
		}, []string{"outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "auth_failures_total",
			Help: "Refused probe requests by reason (signature, disabled, role, too_many_requests, busy, live).",
		}, []string{"reason"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "live_connections",
			Help: "Probes holding an authenticated live channel.",
		}),
		livePushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "live_messages_total",
			Help: "Messages queued to live channels by type (schedule, nudge, dropped).",
		}, []string{"type"}),
		census: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anycatch", Subsystem: "collector", Name: "census_replies_total",
			Help: "Census replies site agents reported, by verdict (accepted, duplicate, rejected) and reason class of rejections (mac: not a probe of the round; round, time, rtt, json, addr).",
		}, []string{"verdict", "reason"}),
	}
	m.reg.MustRegister(m.census, m.live, m.livePushes, m.lines, m.rejected, m.uploads, m.batchRows, m.commitSecs, m.queueDepth,
		m.enrollments, m.authFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Collectors returns the collector's own metrics (without the Go and
// process collectors), to register on a server-wide registry.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.lines, m.rejected, m.uploads, m.batchRows, m.commitSecs, m.queueDepth, m.enrollments, m.authFailures, m.live, m.livePushes, m.census}
}

// Registry returns the registry, so the server can add its own metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
