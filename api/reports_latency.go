package api

// The latency report: GET /targets/{name}/latency.

import (
	"io"
	"net/http"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// LatencyReport is a target's latency over a time range.
type LatencyReport struct {
	Target   string                   `json:"target"`
	From     time.Time                `json:"from"`
	To       time.Time                `json:"to"`
	Kind     measure.Kind             `json:"kind"`
	AF       *int                     `json:"af"`
	Group    string                   `json:"group"`
	Total    catchment.LatencyStats   `json:"total"`
	Sites    []catchment.LatencyStats `json:"sites"`
	Groups   []catchment.LatencyStats `json:"groups"`
	Inflated []catchment.Inflated     `json:"inflated"`
	// ByGroupSite is the group × site matrix: per (group, site) the
	// statistics of the group's probes that reached that site.
	ByGroupSite []GroupSiteLatency `json:"by_group_site"`
}

// GroupSiteLatency is one cell of a latency report's group × site matrix.
type GroupSiteLatency = catchment.GroupSiteLatency

func (s *Server) getLatency(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	now := s.now().UTC()
	lq := LatencyQuery{TargetID: t.ID, To: q.time("to", now), AF: q.af()}
	lq.From = q.time("from", lq.To.Add(-24*time.Hour))
	if !lq.From.Before(lq.To) {
		q.fail("from", "must be before to")
	} else if lq.To.Sub(lq.From) > 366*24*time.Hour {
		q.fail("from", "range is longer than 366 days")
	}
	kindGiven := q.str("kind") != ""
	lq.Kind = measure.Kind(q.enum("kind", string(defaultLatencyKind(t)), "identity", "dns", "ping", "trace"))
	g := q.grouping(s.cfg.Regions)
	opt := catchment.InflationOptions{Grouping: g, MinExtraMS: q.float("inflation_ms", 0), MinRatio: q.float("inflation_ratio", 0)}
	format := q.format("csv")
	if q.err != nil {
		return nil, q.err
	}
	rows, err := s.store.Latency(r.Context(), lq)
	if err == nil && len(rows) == 0 && !kindGiven {
		// A target may hold the other kind that identifies sites (RIPE
		// Atlas imports are dns, anycatch's own probes measure identity):
		// default to the one it has rather than answer empty.
		other := lq
		other.Kind = map[measure.Kind]measure.Kind{measure.KindIdentity: measure.KindDNS, measure.KindDNS: measure.KindIdentity}[lq.Kind]
		var more []LatencyRow
		if more, err = s.store.Latency(r.Context(), other); err == nil && len(more) > 0 {
			rows, lq = more, other
		}
	}
	if err != nil {
		return nil, err
	}
	// Which kind the report is of, also for CSV (whose columns cannot say).
	rep := latencyReport(rows, opt, format == "csv")
	rep.Target, rep.From, rep.To, rep.Kind = t.Name, lq.From, lq.To, lq.Kind
	if lq.AF != 0 {
		rep.AF = &lq.AF
	}
	return stream(func(w http.ResponseWriter) {
		w.Header().Set("X-Anycatch-Kind", string(lq.Kind))
		if format == "csv" {
			writeLatencyCSV(w, &rep)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if err := writeLatencyReport(w, &rep); err != nil {
			s.log.Debug("api latency write", "err", err)
		}
	}), nil
}

// defaultLatencyKind is the kind a latency report uses when the request
// names none: the target's own site-identifying measurement (identity or
// dns, as its specs say), identity when it has neither (imported targets
// have no specs; getLatency then falls back to dns when identity is empty).
func defaultLatencyKind(t Target) measure.Kind {
	for _, sp := range t.Specs {
		if sp.Kind == measure.KindIdentity || sp.Kind == measure.KindDNS {
			return sp.Kind
		}
	}
	return measure.KindIdentity
}

// latencyReport computes a latency report's statistics from the store's
// per-(probe, site) rows: Group, Total, Sites and Groups, and unless
// csvOnly (the CSV has no more) Inflated and ByGroupSite, grouped by
// opt.Grouping with opt's inflation thresholds. The caller fills in the
// rest.
func latencyReport(rows []LatencyRow, opt catchment.InflationOptions, csvOnly bool) LatencyReport {
	sum := catchment.SummarizeLatency(rows, opt, !csvOnly)
	rep := LatencyReport{Group: string(opt.Grouping.By), Total: sum.Total, Sites: nonNil(sum.Sites), Groups: nonNil(sum.Groups)}
	if !csvOnly {
		rep.Inflated, rep.ByGroupSite = nonNil(sum.Inflated), sum.ByGroupSite
	}
	return rep
}

// writeLatencyCSV writes the total, per-site and per-group rows of rep.
func writeLatencyCSV(w http.ResponseWriter, rep *LatencyReport) {
	cw := newCSV(w, latencyCSVHeader)
	write := func(dim string, st catchment.LatencyStats) {
		_ = cw.Write([]string{dim, st.Key, itoa(st.Probes), itoa(st.Count), ftoa(st.Loss),
			fptoa(st.Min), fptoa(st.P50), fptoa(st.P90), fptoa(st.P99), fptoa(st.Max)})
	}
	write("total", rep.Total)
	for _, st := range rep.Sites {
		write("site", st)
	}
	for _, st := range rep.Groups {
		write(rep.Group, st)
	}
	cw.Flush()
}

// writeLatencyReport writes rep as encoding/json would, the inflated list
// (thousands of probes on a large target) with the hand-written encoder.
func writeLatencyReport(w io.Writer, rep *LatencyReport) error {
	js := newJSONStream(w)
	js.raw(`{"target":`)
	js.value(rep.Target)
	js.raw(`,"from":`)
	js.value(rep.From)
	js.raw(`,"to":`)
	js.value(rep.To)
	js.raw(`,"kind":`)
	js.value(rep.Kind)
	js.raw(`,"af":`)
	js.value(rep.AF)
	js.raw(`,"group":`)
	js.value(rep.Group)
	js.raw(`,"total":`)
	object(js, &rep.Total, latencyStatsFinite, appendLatencyStatsJSON)
	js.raw(`,"sites":`)
	array(js, rep.Sites, latencyStatsFinite, appendLatencyStatsJSON)
	js.raw(`,"groups":`)
	array(js, rep.Groups, latencyStatsFinite, appendLatencyStatsJSON)
	js.raw(`,"inflated":`)
	if rep.Inflated == nil {
		js.raw("null")
	} else {
		js.raw("[")
		baselines := map[uint64]string{}
		for i := range rep.Inflated {
			if i > 0 {
				js.b = append(js.b, ',')
			}
			js.b = appendInflatedJSON(js.b, &rep.Inflated[i], baselines)
			js.spill()
		}
		js.raw("]")
	}
	js.raw(`,"by_group_site":`)
	array(js, rep.ByGroupSite, groupSiteFinite, appendGroupSiteJSON)
	js.raw("}\n")
	return js.flush()
}
