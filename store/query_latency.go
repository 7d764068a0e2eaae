package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Latency returns per-(probe, site) RTT and loss aggregates of one kind over
// [q.From, q.To), rounded out to whole hours; the rows of one probe are
// adjacent and ordered by site.
// It reads the rollup blocks covering the range (a bounded number of rows
// whatever the range: see rollupblock.go) and sums them here. For kinds
// that do not identify a site (ping, trace) each probe's site is the one
// its identity/dns results reached most often in the range (ties: the
// lowest site code).
func (db *DB) Latency(ctx context.Context, q LatencyQuery) ([]LatencyRow, error) {
	fromH, toH := hoursOf(q.From, q.To)
	kind := string(q.Kind)
	agg := &latencyAgg{kind: kind, af: uint8(q.AF), siteID: map[string]uint16{}}
	agg.identified = kind == "identity" || kind == "dns"
	kinds := []string{kind}
	if !agg.identified {
		kinds = append(kinds, "identity", "dns")
		agg.votes = map[uint64]uint64{}
	}
	var out []LatencyRow
	err := db.readTx(ctx, "latency", func(tx pgx.Tx) error {
		if err := readBlocks(ctx, tx, q.TargetID, kinds, fromH, toH, nil, agg.visit); err != nil {
			return err
		}
		dir, err := db.probeDirectory(ctx, tx)
		if err != nil {
			return err
		}
		if err := agg.readTail(ctx, tx, q.TargetID, kinds, fromH, toH, dir.byID); err != nil {
			return err
		}
		out, err = agg.rows(dir.byNum)
		return err
	})
	return out, err
}

// latAcc sums one (probe, site) of a latency report.
type latAcc struct {
	num                     uint32
	site                    uint16
	hasMin                  bool
	rttMin                  float32
	next                    int32 // index+1 of the probe's next (probe, site); 0 ends
	results, answered, lost uint64
	rttSum, lossSum         float64
}

// latencyAgg sums rollup blocks into latency rows. Probe numbers are dense
// (an identity column), so sums are found through a slice indexed by
// number, then a short per-probe list of sites.
type latencyAgg struct {
	kind       string
	identified bool
	af         uint8 // 0: both
	sites      []string
	siteID     map[string]uint16
	head       []int32 // by probe number: index+1 of its first latAcc
	accs       []latAcc
	votes      map[uint64]uint64 // num<<16 | site → answered identity/dns results
	local      []uint16
	siteBuf    []string
	// rolledUp is, per kind, the newest result time (unix s) the blocks
	// read hold: the rollup's watermark, from which readTail reads on.
	rolledUp map[string]int64
}

func (a *latencyAgg) global(site string) (uint16, error) {
	id, ok := a.siteID[site]
	if !ok {
		if len(a.sites) >= 1<<16-1 {
			return 0, fmt.Errorf("%w: too many sites", errBlock)
		}
		id = uint16(len(a.sites))
		a.sites = append(a.sites, site)
		a.siteID[site] = id
	}
	return id, nil
}

func (a *latencyAgg) visit(kind string, ref blockRef, data []byte) error {
	r, err := newBlockReader(data, ref.Hour*3600, a.siteBuf)
	if err != nil {
		return err
	}
	a.siteBuf = r.sites
	own := kind == a.kind
	if own && cap(a.accs) == 0 && r.n > 0 {
		a.accs = make([]latAcc, 0, r.n+r.n/4)
	}
	a.local = a.local[:0]
	for _, s := range r.sites {
		id, err := a.global(s)
		if err != nil {
			return err
		}
		a.local = append(a.local, id)
	}
	var e blockEntry
	last := a.rolledUp[kind]
	for r.next(&e) {
		last = max(last, e.Last)
		a.add(own, a.local[e.Site], &e)
	}
	if a.rolledUp == nil {
		a.rolledUp = map[string]int64{}
	}
	a.rolledUp[kind] = last
	return r.err
}

// add sums one rollup entry (of the report's kind when own, else an
// identity/dns vote) whose site is the global site id site.
func (a *latencyAgg) add(own bool, site uint16, e *blockEntry) {
	if a.af != 0 && e.AF != a.af {
		return
	}
	if !own {
		if a.sites[site] != "" {
			a.votes[uint64(e.Num)<<16|uint64(site)] += uint64(e.Answered)
		}
		return
	}
	if int(e.Num) >= len(a.head) {
		a.head = slices.Grow(a.head, int(e.Num)+1-len(a.head)+len(a.head)/4)[:int(e.Num)+1]
	}
	var acc *latAcc
	for i := a.head[e.Num]; i != 0; i = a.accs[i-1].next {
		if c := &a.accs[i-1]; !a.identified || c.site == site {
			acc = c
			break
		}
	}
	if acc == nil {
		a.accs = append(a.accs, latAcc{num: e.Num, site: site, next: a.head[e.Num]})
		a.head[e.Num] = int32(len(a.accs))
		acc = &a.accs[len(a.accs)-1]
	}
	if e.Answered > 0 && (!acc.hasMin || e.RTTMin < acc.rttMin) {
		acc.rttMin, acc.hasMin = e.RTTMin, true
	}
	acc.results += uint64(e.Results)
	acc.answered += uint64(e.Answered)
	acc.rttSum += e.RTTSum
	acc.lossSum += float64(e.LossSum)
	acc.lost += uint64(e.LossN)
}

// tailLookback bounds how far back readTail looks for results no rollup
// has summed yet: the rollup job rebuilds this much every run (see
// cmd/anycatch-server mount_api.go), so anything older is in the blocks.
const tailLookback = 3 * time.Hour

// readTail adds the results of [fromH, toH) that no rollup has summed
// yet: those after the newest result the blocks hold (the rollup's
// watermark, a second after it: block times are whole seconds), at most
// tailLookback old. Without it a report misses up to one rollup interval
// (5 minutes) of results, and a fresh deployment shows nothing until the
// first rollup. It reads only the tail, through the results primary key
// (target_id, ts, id), and groups it as the rollup does. A result
// uploaded late, older than the watermark, waits for the next rollup.
func (a *latencyAgg) readTail(ctx context.Context, tx pgx.Tx, targetID int, kinds []string, fromH, toH int64, probes map[string]*probeInfo) error {
	floor := time.Now().Add(-tailLookback).Unix()
	since := make([]time.Time, len(kinds))
	for i, k := range kinds {
		s := floor
		if last, ok := a.rolledUp[k]; ok {
			s = max(s, last+1)
		}
		since[i] = time.Unix(s, 0).UTC()
	}
	// Probe numbers come from the directory in Go: joining probes in SQL
	// made even an empty tail cost a scan of the probes table.
	rows, err := tx.Query(ctx, `SELECT r.kind, r.probe_id, r.af, coalesce(r.site, ''), count(*), count(r.rtt_ms), coalesce(sum(r.rtt_ms), 0),
			coalesce(min(r.rtt_ms), 0), coalesce(sum(r.loss), 0), count(r.loss)
		FROM unnest($2::text[], $5::timestamptz[]) AS w(kind, since)
		JOIN results r ON r.target_id = $1 AND r.kind = w.kind AND r.ts >= w.since AND r.ts >= $3 AND r.ts < $4
		GROUP BY 1, 2, 3, 4`, targetID, kinds, hourTime(fromH), hourTime(toH), since)
	if err != nil {
		return fmt.Errorf("latency tail: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, probe, site string
		var af int16
		var results, answered, lossN int64
		var rttSum, rttMin, lossSum float64
		if err := rows.Scan(&kind, &probe, &af, &site, &results, &answered, &rttSum, &rttMin, &lossSum, &lossN); err != nil {
			return fmt.Errorf("latency tail: %w", err)
		}
		p := probes[probe]
		if p == nil {
			continue // deleted since
		}
		num := p.num
		id, err := a.global(site)
		if err != nil {
			return err
		}
		e := blockEntry{Num: uint32(num), AF: uint8(af), Results: uint32(results), Answered: uint32(answered),
			RTTSum: rttSum, RTTMin: float32(rttMin), LossSum: float32(lossSum), LossN: uint32(lossN)}
		a.add(kind == a.kind, id, &e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("latency tail: %w", err)
	}
	return nil
}

// rows turns the sums into report rows in probe number order, sites in
// order within a probe, with each probe's metadata; probes missing from
// meta (deleted since) are left out.
func (a *latencyAgg) rows(meta map[uint32]*probeInfo) ([]LatencyRow, error) {
	if !a.identified {
		// Each probe's most answered identity/dns site, ties to the lowest code.
		type vote struct {
			site uint16
			n    uint64
		}
		best := map[uint32]vote{}
		for k, n := range a.votes {
			num, site := uint32(k>>16), uint16(k&0xffff)
			b, ok := best[num]
			if !ok || n > b.n || n == b.n && a.sites[site] < a.sites[b.site] {
				best[num] = vote{site, n}
			}
		}
		empty, err := a.global("")
		if err != nil {
			return nil, err
		}
		for i := range a.accs {
			a.accs[i].site = empty
			if b, ok := best[a.accs[i].num]; ok {
				a.accs[i].site = b.site
			}
		}
	}
	out := make([]LatencyRow, 0, len(a.accs))
	floats := make([]float64, 0, 3*len(a.accs))
	f := func(v float64) *float64 {
		floats = append(floats, v)
		return &floats[len(floats)-1]
	}
	var chain []*latAcc
	for num, h := range a.head {
		if h == 0 {
			continue
		}
		p := meta[uint32(num)]
		if p == nil {
			continue
		}
		chain = chain[:0]
		for i := h; i != 0; i = a.accs[i-1].next {
			chain = append(chain, &a.accs[i-1])
		}
		if len(chain) > 1 {
			slices.SortFunc(chain, func(x, y *latAcc) int { return strings.Compare(a.sites[x.site], a.sites[y.site]) })
		}
		for _, acc := range chain {
			l := LatencyRow{Probe: p.id, Site: a.sites[acc.site], Country: p.country, Continent: p.continent, ASN: p.asn,
				Samples: int(acc.answered)}
			if acc.answered > 0 {
				l.RTT = f(acc.rttSum / float64(acc.answered))
			}
			if acc.hasMin {
				l.MinRTT = f(float64(acc.rttMin))
			}
			switch {
			case acc.lost > 0:
				l.Loss = f(acc.lossSum / float64(acc.lost))
			case acc.results > 0:
				l.Loss = f(1 - float64(acc.answered)/float64(acc.results))
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// hoursOf is [from, to) rounded out to whole hours.
func hoursOf(from, to time.Time) (int64, int64) {
	toH := hourOf(to)
	if hourTime(toH).Before(to) {
		toH++
	}
	return hourOf(from), toH
}
