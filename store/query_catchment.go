package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anycatch/anycatch/catchment"
)

// Catchment returns each (probe, af) track's catchment state of a target at
// q.At, ordered by probe and af, with the probe's metadata. Only tracks
// observed within [At-Window, At] are returned.
//
// The current catchment (q.Historical false) reads catchment_latest. An
// earlier one takes each track's latest change at or before At from
// catchment_changes and its liveness, RTT and observation time from
// results_hourly (hour resolution); a track whose results in the window
// had no answer is unreachable. Neither reads raw results.
func (db *DB) Catchment(ctx context.Context, q CatchmentQuery) ([]CatchmentRow, error) {
	if q.Historical {
		return db.catchmentAt(ctx, q)
	}
	from := q.At.Add(-q.Window)
	hint := "catchment " + strconv.Itoa(q.TargetID)
	out := make([]CatchmentRow, 0, db.hints.get(hint)+16)
	err := db.readTx(ctx, "catchment", func(tx pgx.Tx) error {
		dir, err := db.probeDirectory(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT probe_id, af, state, coalesce(site, ''), coalesce(identity, ''), rtt_ms, observed_at, since,
				CASE WHEN state = 'site' THEN coalesce(source, '') ELSE '' END
			FROM catchment_latest
			WHERE target_id = $1 AND ($2 = 0 OR af = $2) AND observed_at >= $3 AND observed_at <= $4
			ORDER BY probe_id, af`, q.TargetID, q.AF, from, q.At)
		if err != nil {
			return err
		}
		return eachRaw(rows, func(d *rawDecoder, v [][]byte) error {
			if len(v) != 9 || v[0] == nil || v[1] == nil || v[2] == nil || v[6] == nil || v[7] == nil {
				return fmt.Errorf("catchment row: %w", errRawValue)
			}
			var c CatchmentRow
			p := dir.byID[string(v[0])]
			if p != nil {
				c.Probe, c.Lat, c.Lon, c.Country, c.Continent, c.ASN = p.id, p.lat, p.lon, p.country, p.continent, p.asn
			} else {
				c.Probe = string(v[0])
			}
			af, err := d.int(d.oids[1], v[1])
			if err != nil {
				return err
			}
			c.AF = int(af)
			c.State = stateOf(d.str(v[2], true))
			c.Site, c.Identity, c.Source = d.str(v[3], true), d.str(v[4], true), d.str(v[8], true)
			if c.RTT, err = d.float(d.oids[5], v[5]); err != nil {
				return err
			}
			if c.ObservedAt, err = d.time(d.oids[6], v[6]); err != nil {
				return err
			}
			if c.Since, err = d.time(d.oids[7], v[7]); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	db.hints.set(hint, len(out))
	return out, nil
}

func stateOf(s string) catchment.State { return catchment.State(s) }

// Unmapped returns the identities of a target's current catchment that no
// rule maps, most probes first. The reasons an answer had no identity
// ("(REFUSED)", "(no TXT)": catchment.NoIdentityReason) are left out: no
// rule can map them.
func (db *DB) Unmapped(ctx context.Context, targetID int) ([]UnmappedIdentity, error) {
	rows, err := db.pool.Query(ctx, `SELECT identity, count(*), max(observed_at), coalesce(source, '') FROM catchment_latest
		WHERE target_id = $1 AND state = 'unidentified' AND coalesce(identity, '') <> '' AND identity NOT LIKE '(%)'
		GROUP BY identity, coalesce(source, '') ORDER BY count(*) DESC, identity LIMIT 1000`, targetID)
	if err != nil {
		return nil, fmt.Errorf("unmapped identities: %w", err)
	}
	defer rows.Close()
	var out []UnmappedIdentity
	for rows.Next() {
		var u UnmappedIdentity
		var n int64
		if err := rows.Scan(&u.Identity, &n, &u.LastSeen, &u.Source); err != nil {
			return nil, fmt.Errorf("unmapped identities: %w", err)
		}
		u.Probes = int(n)
		out = append(out, u)
	}
	return out, rows.Err()
}

// seenAcc is one track's liveness in a historical catchment's window.
type seenAcc struct {
	answered    uint64
	rttSum      float64
	first, last int64
	matched     bool // a change of the track was found
}

// catchmentAt is Catchment at an earlier time: each track's latest change
// at or before At (a backward index-only scan of
// catchment_changes_latest_idx, which includes the to_ columns) with its
// liveness, RTT and last observation in [At-Window, At] summed from the
// identity/dns rollup blocks. The window's first and last hours are read
// from hour blocks and their entries kept only when their results overlap
// the window (hour resolution, as results_hourly has it); a track whose
// results in the window had no answer is unreachable.
func (db *DB) catchmentAt(ctx context.Context, q CatchmentQuery) ([]CatchmentRow, error) {
	from := q.At.Add(-q.Window)
	fromS, atS := from.Unix(), q.At.Unix()
	hF, hA := hourOf(from), hourOf(q.At)
	hint := "catchment-at " + strconv.Itoa(q.TargetID)
	n := db.hints.get(hint) + 16
	seen := make(map[uint64]*seenAcc, n)
	accs := make([]seenAcc, 0, n)
	var siteBuf []string
	visit := func(kind string, ref blockRef, data []byte) error {
		r, err := newBlockReader(data, ref.Hour*3600, siteBuf)
		if err != nil {
			return err
		}
		siteBuf = r.sites
		edge := ref.Level == 0 && (ref.Hour == hF || ref.Hour == hA)
		var e blockEntry
		for r.next(&e) {
			if q.AF != 0 && int(e.AF) != q.AF || edge && (e.First > atS || e.Last < fromS) {
				continue
			}
			k := uint64(e.Num)<<8 | uint64(e.AF)
			a := seen[k]
			if a == nil {
				if len(accs) == cap(accs) {
					accs = make([]seenAcc, 0, 2*cap(accs))
				}
				accs = append(accs, seenAcc{first: 1 << 62, last: -1 << 62})
				a = &accs[len(accs)-1]
				seen[k] = a
			}
			a.answered += uint64(e.Answered)
			a.rttSum += e.RTTSum
			a.last = max(a.last, min(e.Last, atS))
			a.first = min(a.first, max(e.First, fromS))
		}
		return r.err
	}
	// The liveness sums and the latest changes are independent: read them
	// at the same time, on two connections (two PostgreSQL backends).
	livenessDone := make(chan error, 1)
	go func() {
		livenessDone <- db.readTx(ctx, "catchment liveness", func(tx pgx.Tx) error {
			return readBlocks(ctx, tx, q.TargetID, []string{"identity", "dns"}, hF, hA+1, []int64{hF, hA}, visit)
		})
	}()
	out := make([]CatchmentRow, 0, n)
	var since []time.Time
	var pend []*probeInfo
	var dir *probeDir
	err := db.readTx(ctx, "catchment", func(tx pgx.Tx) error {
		var err error
		dir, err = db.probeDirectory(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `WITH c AS (
				SELECT DISTINCT ON (probe_id, af) probe_id, af, ts, to_state, to_site, to_identity
				FROM catchment_changes
				WHERE target_id = $1 AND ts <= $3 AND ($2 = 0 OR af = $2)
				ORDER BY probe_id DESC, af DESC, ts DESC
			)
			SELECT probe_id, af, to_state, coalesce(to_site, ''), coalesce(to_identity, ''), ts
			FROM c ORDER BY probe_id, af`, q.TargetID, q.AF, q.At)
		if err != nil {
			return err
		}
		return eachRaw(rows, func(d *rawDecoder, v [][]byte) error {
			if len(v) != 6 || v[0] == nil || v[1] == nil || v[2] == nil || v[5] == nil {
				return fmt.Errorf("catchment row: %w", errRawValue)
			}
			af, err := d.int(d.oids[1], v[1])
			if err != nil {
				return err
			}
			p := dir.byID[string(v[0])]
			if p == nil {
				return nil // deleted since
			}
			ts, err := d.time(d.oids[5], v[5])
			if err != nil {
				return err
			}
			out = append(out, CatchmentRow{Probe: p.id, AF: int(af), State: stateOf(d.str(v[2], true)),
				Site: d.str(v[3], true), Identity: d.str(v[4], true),
				Lat: p.lat, Lon: p.lon, Country: p.country, Continent: p.continent, ASN: p.asn})
			since, pend = append(since, ts), append(pend, p)
			return nil
		})
	})
	if lerr := <-livenessDone; err == nil {
		err = lerr
	}
	if err != nil {
		return nil, err
	}
	// Keep the tracks observed in the window, with their liveness.
	rtts := make([]float64, 0, len(out))
	kept := out[:0]
	for i := range out {
		c := out[i]
		s := seen[uint64(pend[i].num)<<8|uint64(c.AF)]
		if s == nil {
			continue // not observed in the window
		}
		s.matched = true
		if s.answered == 0 {
			c.State = catchment.StateUnreachable
		} else {
			rtts = append(rtts, s.rttSum/float64(s.answered))
			c.RTT = &rtts[len(rtts)-1]
		}
		c.Since, c.ObservedAt = since[i], since[i]
		if last := time.Unix(s.last, 0).UTC(); last.After(c.ObservedAt) {
			c.ObservedAt = last
		}
		kept = append(kept, c)
	}
	out = kept
	// A track whose every result so far was a timeout or a socket error
	// has no change event (an unreachable observation names no site), yet
	// it was observed: it is unreachable, as the latency report and the
	// current catchment count it.
	added := false
	for k, s := range seen {
		if s.matched || s.answered > 0 {
			continue
		}
		p := dir.byNum[uint32(k>>8)]
		if p == nil {
			continue // deleted since
		}
		first, last := time.Unix(s.first, 0).UTC(), time.Unix(s.last, 0).UTC()
		out = append(out, CatchmentRow{Probe: p.id, AF: int(k & 0xff), State: catchment.StateUnreachable,
			Lat: p.lat, Lon: p.lon, Country: p.country, Continent: p.continent, ASN: p.asn, Since: first, ObservedAt: last})
		added = true
	}
	if added {
		slices.SortFunc(out, func(a, b CatchmentRow) int {
			if c := strings.Compare(a.Probe, b.Probe); c != 0 {
				return c
			}
			return a.AF - b.AF
		})
	}
	db.hints.set(hint, len(out))
	return out, nil
}
