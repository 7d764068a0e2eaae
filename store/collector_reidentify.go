package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// ReidentifyStats summarises a [DB.Reidentify] run.
type ReidentifyStats struct {
	Results int // dns/identity results of the target read
	Updated int // results whose site or identity changed
	Changes int // catchment change events after the rebuild
	// First and Last are the times of the first and last updated result
	// (zero when none): the range whose rollups need rebuilding.
	First, Last time.Time
}

// Reidentify re-applies idf to the stored dns/identity results of target
// with ts >= since (zero since: all) and rebuilds the target's catchment
// state (catchment_latest and catchment_changes) from all its results, in
// one transaction. Results before since keep their stored site and
// identity. Run it after changing a target's rules.
func (db *DB) Reidentify(ctx context.Context, target int, since time.Time, idf *catchment.Identifier) (ReidentifyStats, error) {
	var st ReidentifyStats
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Keep ingest from advancing this target's state meanwhile.
		if _, err := tx.Exec(ctx, `LOCK TABLE catchment_latest IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT ts, id, probe_id, payload, raw, site, identity, id_source FROM results
			WHERE target_id = $1 AND kind IN ('dns', 'identity', 'http', 'ntp', 'trace') ORDER BY ts, id`, target)
		if err != nil {
			return err
		}
		var (
			obs             []catchment.Observation
			upTS            []time.Time
			upID            [][16]byte
			upSite, upIdent []*string
			upSource        []*string
		)
		for rows.Next() {
			var (
				ts          time.Time
				id          [16]byte
				probe       string
				payload     []byte
				raw         [][]byte
				site, ident *string
				source      *string
			)
			if err := rows.Scan(&ts, &id, &probe, &payload, &raw, &site, &ident, &source); err != nil {
				rows.Close()
				return err
			}
			st.Results++
			r, err := DecodeResult(payload, raw)
			if err != nil {
				rows.Close()
				return fmt.Errorf("result %s: %w", measure.UUID(id), err)
			}
			r.Probe = probe
			o, err := catchment.ObservationFromResult(target, r, idf)
			if err != nil {
				// A trace the new rules no longer map loses its old site.
				if !ts.Before(since) && (site != nil || source != nil) {
					upTS, upID = append(upTS, ts), append(upID, id)
					upSite, upIdent, upSource = append(upSite, nil), append(upIdent, nil), append(upSource, nil)
				}
				continue
			}
			if ts.Before(since) {
				// Keep the stored classification.
				if o.State != catchment.StateUnreachable {
					o.State, o.Site, o.Identity, o.Source = catchment.StateUnidentified, "", reidDeref(ident), reidDeref(source)
					if site != nil {
						o.State, o.Site = catchment.StateSite, *site
					}
				}
			} else if o.Site != reidDeref(site) || o.Identity != reidDeref(ident) || o.Source != reidDeref(source) {
				upTS, upID = append(upTS, ts), append(upID, id)
				upSite, upIdent = append(upSite, reidNonEmpty(o.Site)), append(upIdent, reidNonEmpty(o.Identity))
				upSource = append(upSource, reidNonEmpty(o.Source))
			}
			obs = append(obs, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(upID) > 0 {
			tag, err := tx.Exec(ctx, `UPDATE results r SET site = u.site, identity = u.identity, id_source = u.source
				FROM unnest($2::timestamptz[], $3::uuid[], $4::text[], $5::text[], $6::text[]) AS u(ts, id, site, identity, source)
				WHERE r.target_id = $1 AND r.ts = u.ts AND r.id = u.id`, target, upTS, upID, upSite, upIdent, upSource)
			if err != nil {
				return fmt.Errorf("update results: %w", err)
			}
			st.Updated = int(tag.RowsAffected())
			st.First, st.Last = upTS[0], upTS[len(upTS)-1]
		}
		if _, err := tx.Exec(ctx, `DELETE FROM catchment_latest WHERE target_id = $1`, target); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM catchment_changes WHERE target_id = $1`, target); err != nil {
			return err
		}
		latest, changes := catchment.Fold(nil, obs)
		st.Changes = len(changes)
		if err := upsertLatest(ctx, tx, latest); err != nil {
			return err
		}
		return insertChanges(ctx, tx, changes)
	})
	if err != nil {
		return ReidentifyStats{}, fmt.Errorf("reidentify target %d: %w", target, err)
	}
	return st, nil
}

func reidDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func reidNonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
