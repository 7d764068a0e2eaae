package store

import (
	"context"
	"fmt"
	"time"
)

// Burst is one recorded confirmation burst (see collector.BurstEvent).
type Burst struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	TargetID    int       `json:"-"`
	Measurement string    `json:"msm"`
	Trigger     string    `json:"trigger_probe"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Nudged      []string  `json:"nudged"`
}

// RecordBurst stores b and sets its ID.
func (db *DB) RecordBurst(ctx context.Context, b *Burst) error {
	if b.Nudged == nil {
		b.Nudged = []string{}
	}
	err := db.pool.QueryRow(ctx, `
		INSERT INTO confirmation_bursts (at, target_id, msm, trigger_probe, from_place, to_place, nudged)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		b.At, b.TargetID, b.Measurement, b.Trigger, b.From, b.To, b.Nudged).Scan(&b.ID)
	if err != nil {
		return fmt.Errorf("record burst: %w", classify(err))
	}
	return nil
}

// Bursts returns a target's confirmation bursts since from, oldest first,
// at most limit.
func (db *DB) Bursts(ctx context.Context, targetID int, from time.Time, limit int) ([]Burst, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT id, at, target_id, msm, trigger_probe, from_place, to_place, nudged
		FROM confirmation_bursts WHERE target_id = $1 AND at >= $2 ORDER BY at, id LIMIT $3`, targetID, from, limit)
	if err != nil {
		return nil, fmt.Errorf("list bursts: %w", err)
	}
	defer rows.Close()
	var out []Burst
	for rows.Next() {
		var b Burst
		if err := rows.Scan(&b.ID, &b.At, &b.TargetID, &b.Measurement, &b.Trigger, &b.From, &b.To, &b.Nudged); err != nil {
			return nil, fmt.Errorf("list bursts: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list bursts: %w", err)
	}
	return out, nil
}
