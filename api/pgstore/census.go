package pgstore

import (
	"context"

	"github.com/anycatch/anycatch/api"
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
