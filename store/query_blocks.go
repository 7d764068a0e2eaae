package store

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// hourOf is t in whole hours since the Unix epoch (rounded down).
func hourOf(t time.Time) int64 {
	s := t.Unix()
	h := s / 3600
	if s%3600 < 0 {
		h--
	}
	return h
}

func hourTime(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }

type blockGroup struct {
	target int
	kind   string
}

// buildBlocks rebuilds the rollup blocks of the hours [from, to) from
// results_hourly: the level-0 block of every hour, and every higher block
// overlapping those hours whose span has ended by completeBy (a block still
// filling up is left to the hours below it), for the targets listed.
// It returns the number of blocks written.
func buildBlocks(ctx context.Context, tx pgx.Tx, from, to, completeBy time.Time, targets []int32) (int, error) {
	fromH, toH := hoursOf(from, to)
	doneH := hourOf(completeBy)
	if fromH >= toH {
		return 0, nil
	}
	groups := map[blockGroup]bool{}
	addGroups := func(sql string, args ...any) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g blockGroup
			if err := rows.Scan(&g.target, &g.kind); err != nil {
				return err
			}
			groups[g] = true
		}
		return rows.Err()
	}
	// Groups that had blocks in the range (their data may be gone now)
	// and groups with rollup rows in it.
	if err := addGroups(`DELETE FROM rollup_blocks WHERE target_id = ANY($3) AND level = 0 AND start >= $1 AND start < $2
		RETURNING target_id, kind`, hourTime(fromH), hourTime(toH), targets); err != nil {
		return 0, fmt.Errorf("rollup blocks: %w", err)
	}
	if err := addGroups(`SELECT DISTINCT target_id, kind FROM results_hourly WHERE target_id = ANY($3) AND hour >= $1 AND hour < $2`,
		hourTime(fromH), hourTime(toH), targets); err != nil {
		return 0, fmt.Errorf("rollup blocks: %w", err)
	}
	sorted := make([]blockGroup, 0, len(groups))
	for g := range groups {
		sorted = append(sorted, g)
	}
	slices.SortFunc(sorted, func(a, b blockGroup) int {
		return cmp.Or(cmp.Compare(a.target, b.target), strings.Compare(a.kind, b.kind))
	})
	written := 0
	for _, g := range sorted {
		n, err := buildGroupBlocks(ctx, tx, g, fromH, toH, doneH)
		if err != nil {
			return written, fmt.Errorf("rollup blocks of target %d %s: %w", g.target, g.kind, err)
		}
		written += n
	}
	return written, nil
}

// buildGroupBlocks does buildBlocks for one target and kind.
func buildGroupBlocks(ctx context.Context, tx pgx.Tx, g blockGroup, fromH, toH, doneH int64) (int, error) {
	mem := map[blockRef]*block{}
	// Level 0 from results_hourly.
	rows, err := tx.Query(ctx, `SELECT h.hour, p.num, h.af, h.site, h.results, h.answered, h.rtt_sum,
			coalesce(h.rtt_min, 0), h.loss_sum, h.loss_n, h.first_ts, h.last_ts
		FROM results_hourly h JOIN probes p ON p.id = h.probe_id
		WHERE h.target_id = $1 AND h.hour >= $2 AND h.hour < $3 AND h.kind = $4`,
		g.target, hourTime(fromH), hourTime(toH), g.kind)
	if err != nil {
		return 0, err
	}
	type siteEntry struct {
		blockEntry
		site string
	}
	perHour := map[int64][]siteEntry{}
	for rows.Next() {
		var hour, first, last time.Time
		var e siteEntry
		var af int16
		var results, answered, lossN int32
		var rttMin, lossSum float64
		if err := rows.Scan(&hour, &e.Num, &af, &e.site, &results, &answered, &e.RTTSum, &rttMin, &lossSum, &lossN, &first, &last); err != nil {
			rows.Close()
			return 0, err
		}
		if results <= 0 || answered < 0 || lossN < 0 || answered > results || lossN > results {
			continue // not what the rollup writes
		}
		// Keep every value one the block reader accepts.
		if !(e.RTTSum >= 0 && e.RTTSum <= math.MaxFloat64) {
			e.RTTSum = 0
		}
		if !(rttMin >= 0 && rttMin <= math.MaxFloat32) {
			rttMin = 0
		}
		if !(lossSum >= 0 && lossSum <= math.MaxFloat32) {
			lossSum = 0
		}
		e.AF = uint8(af)
		e.Results, e.Answered, e.LossN = uint32(results), uint32(answered), uint32(lossN)
		e.RTTMin, e.LossSum = float32(rttMin), float32(lossSum)
		e.First, e.Last = first.Unix(), last.Unix()
		h := hourOf(hour)
		perHour[h] = append(perHour[h], e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var fresh []blockRef
	for h, es := range perHour {
		b := &block{Start: h * 3600}
		for _, e := range es {
			if _, ok := slices.BinarySearch(b.Sites, e.site); !ok {
				i, _ := slices.BinarySearch(b.Sites, e.site)
				b.Sites = slices.Insert(b.Sites, i, e.site)
			}
		}
		b.Entries = make([]blockEntry, len(es))
		for i, e := range es {
			si, _ := slices.BinarySearch(b.Sites, e.site)
			e.blockEntry.Site = uint16(si)
			b.Entries[i] = e.blockEntry
		}
		slices.SortFunc(b.Entries, compareEntries)
		ref := blockRef{0, h}
		mem[ref] = b
		fresh = append(fresh, ref)
	}
	// Higher levels from their halves, lowest level first. Every built
	// block of level 1 and up is written, empty or not, so a missing one
	// means "not built yet" (say the rollup did not run when its span
	// ended): such a child is built from its own halves first, down to the
	// hour blocks, where a missing block means no results that hour.
	var stale []blockRef
	// Which blocks exist around the range, so that missing children are
	// known without a query each.
	top := int64(1) << maxBlockLevel
	exists := map[blockRef]bool{}
	erows, err := tx.Query(ctx, `SELECT start, level FROM rollup_blocks WHERE target_id = $1 AND kind = $2 AND start >= $3 AND start < $4`,
		g.target, g.kind, hourTime(floorTo(fromH, top)), hourTime(floorTo(toH-1, top)+top))
	if err != nil {
		return 0, err
	}
	for erows.Next() {
		var start time.Time
		var level int16
		if err := erows.Scan(&start, &level); err != nil {
			erows.Close()
			return 0, err
		}
		exists[blockRef{int(level), hourOf(start)}] = true
	}
	erows.Close()
	if err := erows.Err(); err != nil {
		return 0, err
	}
	// Hours with results (hour blocks in the database outside the range,
	// rebuilt ones inside it), sorted: a missing higher block over none of
	// them is empty and needs no building.
	var hours []int64
	for r := range exists {
		if r.Level == 0 && (r.Hour < fromH || r.Hour >= toH) {
			hours = append(hours, r.Hour)
		}
	}
	for h := range perHour {
		hours = append(hours, h)
	}
	slices.Sort(hours)
	anyHour := func(from, to int64) bool {
		i, _ := slices.BinarySearch(hours, from)
		return i < len(hours) && hours[i] < to
	}
	var child, parent func(ref blockRef) (*block, error)
	child = func(ref blockRef) (*block, error) {
		if b, ok := mem[ref]; ok {
			return b, nil
		}
		if ref.Level == 0 && (ref.Hour >= fromH && ref.Hour < toH || !exists[ref]) {
			return nil, nil // no results that hour
		}
		if !exists[ref] {
			if !anyHour(ref.Hour, ref.Hour+int64(1)<<ref.Level) {
				return nil, nil
			}
			return parent(ref)
		}
		var data []byte
		err := tx.QueryRow(ctx, `SELECT data FROM rollup_blocks WHERE target_id = $1 AND kind = $2 AND start = $3 AND level = $4`,
			g.target, g.kind, hourTime(ref.Hour), ref.Level).Scan(&data)
		if err != nil {
			return nil, err
		}
		b, err := decodeBlock(data, ref.Hour*3600)
		if err != nil {
			return nil, err
		}
		mem[ref] = b
		return b, nil
	}
	parent = func(ref blockRef) (*block, error) {
		half := int64(1) << (ref.Level - 1)
		var parts []*block
		for _, h := range []int64{ref.Hour, ref.Hour + half} {
			c, err := child(blockRef{ref.Level - 1, h})
			if err != nil {
				return nil, err
			}
			if c != nil && len(c.Entries) > 0 {
				parts = append(parts, c)
			}
		}
		b := mergeBlocks(ref.Hour*3600, parts...)
		mem[ref] = b
		stale = append(stale, ref)
		fresh = append(fresh, ref)
		return b, nil
	}
	for k := 1; k <= maxBlockLevel; k++ {
		span := int64(1) << k
		for s := floorTo(fromH, span); s < toH && s+span <= doneH; s += span {
			if _, err := parent(blockRef{k, s}); err != nil {
				return 0, err
			}
		}
	}
	if len(stale) > 0 {
		starts := make([]time.Time, len(stale))
		levels := make([]int16, len(stale))
		for i, r := range stale {
			starts[i], levels[i] = hourTime(r.Hour), int16(r.Level)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM rollup_blocks b USING unnest($3::timestamptz[], $4::smallint[]) AS w(start, level)
			WHERE b.target_id = $1 AND b.kind = $2 AND b.start = w.start AND b.level = w.level`,
			g.target, g.kind, starts, levels); err != nil {
			return 0, err
		}
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	var buf []byte
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"rollup_blocks"}, []string{"target_id", "kind", "start", "level", "entries", "data"},
		pgx.CopyFromSlice(len(fresh), func(i int) ([]any, error) {
			r := fresh[i]
			b := mem[r]
			buf = encodeBlock(buf[:0], b)
			data := slices.Clone(buf)
			return []any{g.target, g.kind, hourTime(r.Hour), int16(r.Level), int32(len(b.Entries)), data}, nil
		}))
	return int(n), err
}

// floorTo rounds h down to a multiple of span.
func floorTo(h, span int64) int64 {
	r := h % span
	if r < 0 {
		r += span
	}
	return h - r
}

// blockSource is where report queries read blocks: one call per block of
// the cover, with the block's raw bytes (valid only during the call).
type blockVisit func(kind string, ref blockRef, data []byte) error

// readBlocks visits the blocks covering the hours [fromH, toH) of a target
// for each kind, within tx. The hours in pin are read from their own hour
// blocks (a caller that filters those entries by time).
func readBlocks(ctx context.Context, tx pgx.Tx, targetID int, kinds []string, fromH, toH int64, pin []int64, visit blockVisit) error {
	if fromH >= toH {
		return nil
	}
	type haveKey struct {
		kind string
		ref  blockRef
	}
	have := map[haveKey]bool{}
	rows, err := tx.Query(ctx, `SELECT kind, start, level FROM rollup_blocks
		WHERE target_id = $1 AND kind = ANY($2) AND start >= $3 AND start < $4 AND level > 0`,
		targetID, kinds, hourTime(fromH), hourTime(toH))
	if err != nil {
		return err
	}
	for rows.Next() {
		var k haveKey
		var start time.Time
		var level int16
		if err := rows.Scan(&k.kind, &start, &level); err != nil {
			rows.Close()
			return err
		}
		k.ref = blockRef{int(level), hourOf(start)}
		have[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var wk []string
	var ws []time.Time
	var wl []int16
	for _, kind := range kinds {
		ok := func(level int, hour int64) bool {
			for _, p := range pin {
				if p >= hour && p < hour+int64(1)<<level {
					return false
				}
			}
			return have[haveKey{kind, blockRef{level, hour}}]
		}
		for _, r := range blockCover(fromH, toH, ok) {
			wk, ws, wl = append(wk, kind), append(ws, hourTime(r.Hour)), append(wl, int16(r.Level))
		}
	}
	rows, err = tx.Query(ctx, `SELECT b.kind, b.start, b.level, b.data
		FROM unnest($2::text[], $3::timestamptz[], $4::smallint[]) AS w(kind, start, level)
		JOIN rollup_blocks b ON b.target_id = $1 AND b.kind = w.kind AND b.start = w.start AND b.level = w.level`,
		targetID, wk, ws, wl)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var start time.Time
		var level int16
		raw := rows.RawValues()
		if err := rows.Scan(&kind, &start, &level, nil); err != nil {
			return err
		}
		if err := visit(kind, blockRef{int(level), hourOf(start)}, raw[3]); err != nil {
			return err
		}
	}
	return rows.Err()
}
