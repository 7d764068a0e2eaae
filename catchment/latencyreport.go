package catchment

// The latency report: per-(probe, site) rows to statistics per place,
// per group, inflation and the group × site matrix.

// SiteLatency aggregates one probe's results towards one site over a
// range: the input to [SummarizeLatency], as the store returns it.
type SiteLatency struct {
	Probe     string
	Site      string // "" when unidentified
	Country   string
	Continent string
	ASN       *int64
	Samples   int      // results with an RTT
	RTT       *float64 // mean RTT over the range, ms
	Loss      *float64 // mean loss fraction
	MinRTT    *float64
}

// LatencySummary is the statistics of a latency report.
type LatencySummary struct {
	Total  LatencyStats   // over all probes, keyed "all"
	Sites  []LatencyStats // per place ([BySite]), sorted by key
	Groups []LatencyStats // per group of probes, sorted by key
	// Inflated lists the inflated probes (see [Inflation]); nil without.
	Inflated []Inflated
	// ByGroupSite is the group × site matrix: per (group, site) the
	// statistics of the group's probes that reached that site, by group,
	// then site.
	ByGroupSite []GroupSiteLatency
}

// SummarizeLatency computes a latency report's statistics from
// per-(probe, site) rows, a probe's rows adjacent: Total, Sites and
// Groups, and with full also Inflated and ByGroupSite, grouped by
// opt.Grouping with opt's inflation thresholds. A probe's RTT is its
// sites' mean weighted by samples, its site the one with most answers;
// a probe without any answer is unreachable.
//
// Inputs are numbered by group and by place once, and every statistic is
// computed over those numbers and pointer-free samples ([LatencyByID],
// [LatencyPerID]), so no key string is built per input.
func SummarizeLatency(rows []SiteLatency, opt InflationOptions, full bool) LatencySummary {
	g := opt.Grouping
	perSite, perProbe := latencyEntries(rows)
	groupIDs := NewGroupIndex(g)
	probeGroups := make([]int32, len(perProbe))
	probeSamples := make([]Sample, len(perProbe))
	for i := range perProbe {
		probeGroups[i] = groupIDs.ID(&perProbe[i])
		probeSamples[i] = perProbe[i].Sample()
	}
	// The per-site entries (rows) are only needed for their place and
	// group, so they are made one at a time.
	var placeIDs KeyIndex
	sitePlaces, siteGroups := make([]int32, len(rows)), make([]int32, len(rows))
	for i := range rows {
		e := latencyEntry(&rows[i], rows[i].Samples, rows[i].RTT)
		sitePlaces[i] = placeIDs.ID(BySite(e))
		siteGroups[i] = groupIDs.ID(&e)
	}
	sum := LatencySummary{
		Sites:  LatencyByID(perSite, sitePlaces, placeIDs.Keys()),
		Groups: LatencyByID(probeSamples, probeGroups, groupIDs.Keys()),
		Total:  Summarize("all", nil, 0)}
	if len(perProbe) > 0 {
		sum.Total = LatencyByID(probeSamples, make([]int32, len(perProbe)), []string{"all"})[0]
	}
	if !full {
		return sum
	}
	cells := newSiteCells(siteGroups, groupIDs.Keys(), sitePlaces, placeIDs.Keys())
	// Inflation groups like the report except that "all" means by
	// continent there.
	inflGroups, inflKeys := probeGroups, groupIDs.Keys()
	if g.By == GroupAll {
		cont := NewGroupIndex(Grouping{By: GroupContinent})
		inflGroups = make([]int32, len(perProbe))
		for i := range perProbe {
			inflGroups[i] = cont.ID(&perProbe[i])
		}
		inflKeys = cont.Keys()
	}
	sum.Inflated = InflationByID(perProbe, inflGroups, inflKeys, opt)
	sum.ByGroupSite = groupSiteMatrix(cells, LatencyPerID(perSite, cells.ids, len(cells.group)), opt, sum.Inflated)
	return sum
}

// latencyEntries turns per-(probe, site) aggregates into latency inputs:
// one sample per (probe, site) for per-site statistics, and one entry per
// probe (RTT weighted over its sites, site the one with most answers) for
// regional statistics and inflation. A probe with no answer in the range
// is unreachable.
func latencyEntries(rows []SiteLatency) (perSite []Sample, perProbe []Entry) {
	// rows come ordered by probe; most probes have one row.
	probes := 0
	for i := range rows {
		if i == 0 || rows[i].Probe != rows[i-1].Probe {
			probes++
		}
	}
	perSite = make([]Sample, 0, len(rows))
	perProbe = make([]Entry, probes)
	means := make([]float64, probes) // the per-probe RTTs, in one allocation
	for i, k := 0, 0; i < len(rows); k++ {
		j := i
		best := &rows[i]
		var sum float64
		n := 0
		for ; j < len(rows) && rows[j].Probe == rows[i].Probe; j++ {
			l := &rows[j]
			e := latencyEntry(l, l.Samples, l.RTT)
			perSite = append(perSite, e.Sample())
			if l.RTT != nil {
				sum += *l.RTT * float64(l.Samples)
				n += l.Samples
			}
			if l.Samples > best.Samples || l.Samples == best.Samples && best.Site == "" {
				best = l
			}
		}
		rtt := best.RTT
		if n > 0 {
			means[k] = sum / float64(n)
			rtt = &means[k]
		}
		setLatencyEntry(&perProbe[k], best, n, rtt)
		i = j
	}
	return perSite, perProbe
}

// latencyEntry is the entry of l with samples answers of mean rtt.
func latencyEntry(l *SiteLatency, samples int, rtt *float64) Entry {
	var e Entry
	setLatencyEntry(&e, l, samples, rtt)
	return e
}

// setLatencyEntry sets the zero entry e to latencyEntry(l, samples, rtt),
// in place: perProbe is large.
func setLatencyEntry(e *Entry, l *SiteLatency, samples int, rtt *float64) {
	e.Probe, e.Country, e.Continent = l.Probe, l.Country, l.Continent
	if l.ASN != nil {
		e.ASN = *l.ASN
	}
	switch {
	case samples == 0:
		e.State = StateUnreachable
	case l.Site == "":
		e.State, e.RTT = StateUnidentified, rtt
	default:
		e.State, e.Site, e.RTT = StateSite, l.Site, rtt
	}
}
