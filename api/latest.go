package api

import (
	"context"
	"time"
)

// LatestDataStore is the optional store method behind a report's
// latest_data_at. It is a separate interface so that stores (and test
// fakes) without it still satisfy Store; reports then leave the member
// out.
type LatestDataStore interface {
	// LatestDataAt returns the time of the target's newest result, zero
	// when it has none.
	LatestDataAt(ctx context.Context, targetID int) (time.Time, error)
}

// latestDataAt returns the target's newest result time for a report, or
// nil when the store cannot say or the target has no data.
func (s *Server) latestDataAt(ctx context.Context, targetID int) (*time.Time, error) {
	ls, ok := s.store.(LatestDataStore)
	if !ok {
		return nil, nil
	}
	t, err := ls.LatestDataAt(ctx, targetID)
	if err != nil || t.IsZero() {
		return nil, err
	}
	return &t, nil
}
