package pgstore

import (
	"context"
	"time"

	"github.com/anycatch/anycatch/api"
)

var _ api.BurstStore = Store{}

// Bursts lists a target's recorded confirmation bursts.
func (s Store) Bursts(ctx context.Context, targetID int, from time.Time, limit int) ([]api.Burst, error) {
	bs, err := s.DB.Bursts(ctx, targetID, from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Burst, len(bs))
	for i, b := range bs {
		out[i] = api.Burst{ID: b.ID, At: b.At, Measurement: b.Measurement, Trigger: b.Trigger, From: b.From, To: b.To, Nudged: b.Nudged}
	}
	return out, nil
}
