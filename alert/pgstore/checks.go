package pgstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/anycatch/anycatch/alert"
	"github.com/anycatch/anycatch/alert/service"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

var _ service.CheckStore = Store{}

// regionWindow is how far back a track counts for a probe's region: any
// probe that could have moved within the longest rule window.
const regionWindow = 24 * time.Hour

// ProbeRegions reads the regions of the probes with a track of the target
// from the current catchment (catchment_latest and the probe directory,
// no raw results).
func (s Store) ProbeRegions(ctx context.Context, targetID int) (map[string]alert.ProbeRegion, error) {
	now := time.Now()
	rows, err := s.DB.Catchment(ctx, store.CatchmentQuery{TargetID: targetID, At: now.Add(time.Minute), Window: regionWindow})
	if err != nil {
		return nil, fmt.Errorf("probe regions: %w", err)
	}
	out := make(map[string]alert.ProbeRegion, len(rows)/2+1)
	for _, r := range rows {
		pr := alert.ProbeRegion{Country: r.Country, Continent: r.Continent}
		if pr.Continent == "" && pr.Country != "" {
			pr.Continent = catchment.ContinentOf(pr.Country)
		}
		if r.ASN != nil {
			pr.ASN = *r.ASN
		}
		out[r.Probe] = pr
	}
	return out, nil
}

// SpeedOfLight checks the target's identified results in [from, to)
// against the speed of light in fibre (catchment.Impossible), as the
// speed-of-light report does, and returns one finding per (probe, af,
// site) pair with impossible results, weighted by how many ms too fast
// its fastest result was. Probe locations are those of the probes with a
// track in the range; pairs without both locations are not checked.
func (s Store) SpeedOfLight(ctx context.Context, targetID int, from, to time.Time) ([]alert.Finding, error) {
	sites, err := s.DB.ListSites(ctx, targetID)
	if err != nil {
		return nil, fmt.Errorf("speed-of-light check: %w", err)
	}
	siteAt := map[string]catchment.Point{}
	for _, st := range sites {
		if st.Lat != nil && st.Lon != nil {
			siteAt[st.Code] = catchment.Point{Lat: *st.Lat, Lon: *st.Lon}
		}
	}
	if len(siteAt) == 0 {
		return nil, nil // nothing can be checked: no query
	}
	tracks, err := s.DB.Catchment(ctx, store.CatchmentQuery{TargetID: targetID, At: to, Window: to.Sub(from)})
	if err != nil {
		return nil, fmt.Errorf("speed-of-light check: probe locations: %w", err)
	}
	probeAt := map[string]catchment.Point{}
	for _, t := range tracks {
		if t.Lat != nil && t.Lon != nil {
			probeAt[t.Probe] = catchment.Point{Lat: *t.Lat, Lon: *t.Lon}
		}
	}
	rtts, err := s.DB.SiteRTTs(ctx, targetID, from, to, 0)
	if err != nil {
		return nil, fmt.Errorf("speed-of-light check: %w", err)
	}
	return impossiblePairs(rtts, probeAt, siteAt), nil
}

// impossiblePairs is the pure part of SpeedOfLight.
func impossiblePairs(rtts []store.SiteRTTs, probeAt, siteAt map[string]catchment.Point) []alert.Finding {
	var out []alert.Finding
	for _, x := range rtts {
		pp, okP := probeAt[x.Probe]
		sp, okS := siteAt[x.Site]
		if !okP || !okS {
			continue
		}
		// RTTs are ascending: past the non-positive ones (which prove
		// nothing) the impossible ones are a prefix.
		pos := sort.Search(len(x.RTTs), func(i int) bool { return x.RTTs[i] > 0 })
		rest := x.RTTs[pos:]
		bad := sort.Search(len(rest), func(i int) bool { return !catchment.Impossible(pp, sp, rest[i]) })
		if bad == 0 {
			continue
		}
		km := catchment.DistanceKm(pp, sp)
		need := max((km-catchment.SlackKm)/catchment.KmPerMSRTT, 0)
		out = append(out, alert.Finding{AF: x.AF, Key: x.Probe + ">" + x.Site, Weight: need - rest[0],
			Detail: fmt.Sprintf("probe %s -> site %s: %d of %d results faster than light (fastest %.1f ms, %.0f km needs %.1f ms)",
				x.Probe, x.Site, bad, len(x.RTTs), rest[0], km, need)})
	}
	return out
}

// Inflation returns the target's probes with an inflated anycast RTT in
// [from, to) (rounded out to whole hours), from the result rollups as the
// latency report reads them, with the report's default thresholds and
// grouping (continent); weighted by the extra ms.
func (s Store) Inflation(ctx context.Context, targetID int, from, to time.Time) ([]alert.Finding, error) {
	t, err := s.DB.GetTargetByID(ctx, targetID)
	if err != nil {
		return nil, fmt.Errorf("inflation check: %w", err)
	}
	kind := measure.KindIdentity
	for _, sp := range t.Specs {
		if sp.Kind == measure.KindIdentity || sp.Kind == measure.KindDNS {
			kind = sp.Kind
			break
		}
	}
	var out []alert.Finding
	for _, af := range []int{4, 6} {
		rows, err := s.DB.Latency(ctx, store.LatencyQuery{TargetID: targetID, From: from, To: to, AF: af, Kind: kind})
		if err != nil {
			return nil, fmt.Errorf("inflation check: %w", err)
		}
		for _, in := range catchment.SummarizeLatency(rows, catchment.InflationOptions{}, true).Inflated {
			out = append(out, alert.Finding{AF: af, Key: in.Probe, Weight: in.ExtraMS,
				Detail: fmt.Sprintf("probe %s (%s) -> site %s: %.1f ms, %.1f ms over its %s baseline via %s (x%.1f)",
					in.Probe, in.Group, in.Site, in.RTT, in.ExtraMS, in.BaselineSource, in.BaselineSite, in.Ratio)})
		}
	}
	return out, nil
}
