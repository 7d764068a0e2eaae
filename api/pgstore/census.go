package pgstore

import (
	"cmp"
	"context"
	"slices"
	"strconv"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/store"
)

var _ api.CensusStore = Store{}

func (s Store) CensusConfig(ctx context.Context, targetID int) (api.CensusConfig, error) {
	c, err := s.DB.CensusConfig(ctx, targetID)
	return api.CensusConfig{TargetID: c.TargetID, Enabled: c.Enabled, MaxPPS: c.MaxPPS}, apiErr(err)
}

func (s Store) SetCensusConfig(ctx context.Context, c api.CensusConfig) error {
	return apiErr(s.DB.SetCensusConfig(ctx, store.CensusConfig{TargetID: c.TargetID, Enabled: c.Enabled, MaxPPS: c.MaxPPS}))
}

func (s Store) IssueSiteToken(ctx context.Context, targetID int, site string, hash [32]byte) error {
	return apiErr(s.DB.IssueSiteToken(ctx, targetID, site, hash))
}

func roundToAPI(r store.CensusRound) api.CensusRound {
	return api.CensusRound{ID: r.ID, TargetID: r.TargetID, Sender: r.Sender, Hitlist: r.Hitlist, RatePPS: r.RatePPS,
		Prefix4: r.Prefix4, Prefix6: r.Prefix6, Secret: r.Secret, Start: r.Start, Closes: r.Closes, LateUntil: r.LateUntil}
}

func (s Store) CreateCensusRound(ctx context.Context, r api.CensusRound) (api.CensusRound, error) {
	sr := store.CensusRound{TargetID: r.TargetID, Sender: r.Sender, Hitlist: r.Hitlist, RatePPS: r.RatePPS,
		Prefix4: r.Prefix4, Prefix6: r.Prefix6, Secret: r.Secret, Start: r.Start, Closes: r.Closes, LateUntil: r.LateUntil}
	if err := s.DB.CreateCensusRound(ctx, &sr); err != nil {
		return api.CensusRound{}, apiErr(err)
	}
	return roundToAPI(sr), nil
}

func (s Store) ListCensusRounds(ctx context.Context, targetID, limit int) ([]api.CensusRound, error) {
	rs, err := s.DB.ListCensusRounds(ctx, targetID, limit)
	if err != nil {
		return nil, apiErr(err)
	}
	out := make([]api.CensusRound, len(rs))
	for i, r := range rs {
		out[i] = roundToAPI(r)
	}
	return out, nil
}

func (s Store) GetCensusRound(ctx context.Context, targetID int, id int64) (api.CensusRound, error) {
	r, err := s.DB.GetCensusRound(ctx, targetID, id)
	if err != nil {
		return api.CensusRound{}, apiErr(err)
	}
	return roundToAPI(r), nil
}

func (s Store) CensusReplies(ctx context.Context, roundID int64) ([]api.CensusReply, error) {
	rs, err := s.DB.CensusReplies(ctx, roundID)
	if err != nil {
		return nil, apiErr(err)
	}
	out := make([]api.CensusReply, len(rs))
	for i, r := range rs {
		out[i] = api.CensusReply{Addr: r.Addr, Prefix: r.Prefix, Site: r.Site, RTTMS: r.RTTMS, Received: r.Received,
			Late: r.Late, ASN: r.ASN, Country: r.Country, Lat: r.Lat, Lon: r.Lon}
	}
	return out, nil
}

func (s Store) CensusSummary(ctx context.Context, roundID int64) (census.Summary, error) {
	counts, tot, err := s.DB.CensusSummary(ctx, roundID)
	if err != nil {
		return census.Summary{}, apiErr(err)
	}
	return summaryOf(counts, tot), nil
}

// summaryOf builds the report's summary from the store's grouped counts,
// in census.Summarize's order and keys ("AS64500", "NL", "unknown").
func summaryOf(counts []store.CensusCount, tot store.CensusTotals) census.Summary {
	sum := census.Summary{Prefixes: tot.Prefixes, MultiSite: tot.MultiSite, Late: tot.Late, Sites: []census.SiteSummary{}}
	idx := map[string]int{}
	site := func(code string) *census.SiteSummary {
		i, ok := idx[code]
		if !ok {
			i = len(sum.Sites)
			idx[code] = i
			sum.Sites = append(sum.Sites, census.SiteSummary{Site: code, ByASN: []census.Count{}, ByCountry: []census.Count{}})
		}
		return &sum.Sites[i]
	}
	for _, c := range counts {
		st := site(c.Site)
		switch {
		case c.ByASN:
			key := "unknown"
			if c.ASN != nil && *c.ASN > 0 {
				key = "AS" + strconv.FormatInt(*c.ASN, 10)
			}
			st.ByASN = append(st.ByASN, census.Count{Key: key, Prefixes: c.Prefixes})
		case c.ByCountry:
			key := c.Country
			if key == "" {
				key = "unknown"
			}
			st.ByCountry = append(st.ByCountry, census.Count{Key: key, Prefixes: c.Prefixes})
		default:
			st.Prefixes = c.Prefixes
		}
	}
	byCount := func(a, b census.Count) int {
		return cmp.Or(cmp.Compare(b.Prefixes, a.Prefixes), cmp.Compare(a.Key, b.Key))
	}
	for i := range sum.Sites {
		slices.SortFunc(sum.Sites[i].ByASN, byCount)
		slices.SortFunc(sum.Sites[i].ByCountry, byCount)
	}
	slices.SortFunc(sum.Sites, func(a, b census.SiteSummary) int {
		return cmp.Or(cmp.Compare(b.Prefixes, a.Prefixes), cmp.Compare(a.Site, b.Site))
	})
	return sum
}

func (s Store) CensusChanges(ctx context.Context, from, to int64, limit int) ([]census.Move, int, error) {
	ms, n, err := s.DB.CensusChanges(ctx, from, to, limit)
	if err != nil {
		return nil, 0, apiErr(err)
	}
	out := make([]census.Move, len(ms))
	for i, m := range ms {
		out[i] = census.Move{Prefix: m.Prefix, From: m.From, To: m.To}
	}
	return out, n, nil
}
