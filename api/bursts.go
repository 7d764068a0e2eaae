package api

import (
	"context"
	"net/http"
	"time"
)

// Burst is one confirmation burst: a result showed a probe's catchment
// place moved and the collector asked the probes likely affected too to
// measure at once (see docs/probe.md). Catchment changes recorded in the
// seconds after At on the same target came from its confirmations.
type Burst struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	Measurement string    `json:"msm"`
	Trigger     string    `json:"trigger_probe"`
	From        string    `json:"from"` // "site:CODE", "unreachable" or "unidentified"
	To          string    `json:"to"`
	Nudged      []string  `json:"nudged"`
}

// BurstStore is implemented by stores that record confirmation bursts; a
// Store without it answers GET /targets/{t}/bursts with an empty list.
type BurstStore interface {
	Bursts(ctx context.Context, targetID int, from time.Time, limit int) ([]Burst, error)
}

func (s *Server) listBursts(r *http.Request) (any, error) {
	t, err := s.target(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	from := q.time("from", s.now().Add(-24*time.Hour))
	limit := q.limit()
	if q.err != nil {
		return nil, q.err
	}
	bs, ok := s.store.(BurstStore)
	if !ok {
		return listOf[Burst](nil), nil
	}
	out, err := bs.Bursts(r.Context(), t.ID, from, limit)
	if err != nil {
		return nil, err
	}
	return listOf(out), nil
}
