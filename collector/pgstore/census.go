package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/anycatch/anycatch/collector"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

var _ collector.CensusStore = Adapter{}

func (a Adapter) EnrollSite(ctx context.Context, e collector.SiteEnrollment) error {
	err := a.DB.EnrollSite(ctx, store.SiteEnrollment{TokenHash: e.TokenHash, ProbeID: e.ProbeID, PublicKey: e.PublicKey,
		Version: e.Version, Src: e.Src, Now: e.Now})
	if errors.Is(err, store.ErrTokenUnusable) {
		return fmt.Errorf("%w: %s", collector.ErrTokenInvalid, reason(err, store.ErrTokenUnusable))
	}
	return err
}

func (a Adapter) CensusAgent(ctx context.Context, probe string) (collector.CensusAgent, error) {
	g, err := a.DB.CensusAgent(ctx, probe)
	if errors.Is(err, store.ErrNotFound) {
		return collector.CensusAgent{}, fmt.Errorf("%w: %s", collector.ErrUnknownProbe, probe)
	}
	if err != nil {
		return collector.CensusAgent{}, err
	}
	return collector.CensusAgent{TargetID: g.TargetID, Target: g.Target, Site: g.Site, Addr4: g.Addr4, Addr6: g.Addr6,
		Enabled: g.Enabled, MaxPPS: g.MaxPPS}, nil
}

func (a Adapter) LiveCensusRounds(ctx context.Context, targetID int, now time.Time) ([]measure.CensusRound, error) {
	rs, err := a.DB.LiveCensusRounds(ctx, targetID, now)
	if err != nil {
		return nil, err
	}
	out := make([]measure.CensusRound, len(rs))
	for i, r := range rs {
		out[i] = measure.CensusRound{ID: r.ID, Sender: r.Sender, Hitlist: r.Hitlist, RatePPS: r.RatePPS,
			Prefix4: r.Prefix4, Prefix6: r.Prefix6, Secret: r.Secret, Start: r.Start, Closes: r.Closes, LateUntil: r.LateUntil}
	}
	return out, nil
}

func (a Adapter) IngestCensus(ctx context.Context, rows []collector.CensusRow) ([]bool, error) {
	out := make([]store.CensusReply, len(rows))
	for i, r := range rows {
		var asn *int64
		if r.Geo.ASN != 0 {
			v := int64(r.Geo.ASN)
			asn = &v
		}
		out[i] = store.CensusReply{Round: r.Round, Addr: r.Addr, Site: r.Site, Prefix: r.Prefix, RTTMS: r.RTTMS,
			Sent: r.Sent, Received: r.Received, Late: r.Late, ASN: asn, Country: r.Geo.Country, Lat: r.Geo.Lat, Lon: r.Geo.Lon}
	}
	return a.DB.IngestCensusReplies(ctx, out)
}
