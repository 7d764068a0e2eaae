package pgstore

import (
	"context"
	"time"

	"github.com/anycatch/anycatch/api"
)

var _ api.LatestDataStore = Store{}

// LatestDataAt implements api.LatestDataStore.
func (s Store) LatestDataAt(ctx context.Context, targetID int) (time.Time, error) {
	t, err := s.DB.LatestDataAt(ctx, targetID)
	return t, apiErr(err)
}
