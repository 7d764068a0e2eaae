// Package importer stores RIPE Atlas result files as results of an
// anycatch target, from external probes "atlas:<prb_id>".
//
// A file (JSON array or NDJSON, optionally gzip-compressed) is streamed
// through [atlas.Reader] in constant memory: results go to the store in
// bounded batches (IngestBatch, which advances catchment state for dns
// results) together with the probes that produced them (located by their
// public "from" address). Ids are deterministic, so importing a file again
// stores nothing new. Every record is accounted for: stored, a duplicate,
// or reported as bad with its line or element number.
package importer

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/anycatch/anycatch/atlas"
	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/store"
)

// Store is what an import needs from the database.
type Store interface {
	IngestBatch(ctx context.Context, rows []store.ResultRow) ([]bool, error)
	UpsertExternalProbes(ctx context.Context, ps []store.ExternalProbe) (created int, err error)
	// RollupResults rebuilds the hourly/daily aggregates of [from, to),
	// which historical catchment and latency queries read: imported
	// results are a backfill the server's periodic rollup never covers.
	RollupResults(ctx context.Context, from, to time.Time) error
}

var _ Store = (*store.DB)(nil)

// DefaultBatchSize is the number of results per IngestBatch call when
// Options.BatchSize is zero: large enough to amortise a transaction, small
// enough to keep memory flat and commits frequent.
const DefaultBatchSize = 2000

// maxShownBad bounds the bad-record messages written to Options.Errors per
// file; further ones are only counted.
const maxShownBad = 1000

// maxKeptBad bounds Stats.BadRecords.
const maxKeptBad = 100

// Options configures an import. Store and Target are required.
type Options struct {
	Store Store
	// Target receives the results. ID and Name are used; Addr4/Addr6 only
	// to count results to other addresses (Stats.OtherDst).
	Target store.Target
	// Identifier maps dns identities to sites. Nil maps nothing: every
	// answered dns result is unidentified (its identity is kept and shows
	// as unmapped).
	Identifier *catchment.Identifier
	// Locate geolocates a probe's public address. Nil stores probes
	// without location.
	Locate func(netip.Addr) geo.Info
	// BatchSize is the number of results per store batch. 0 means
	// DefaultBatchSize.
	BatchSize int
	// Strict makes the first bad record fatal: the import stops before
	// storing the batch it was in (earlier batches stay committed).
	Strict bool
	// Partial accepts a file that cannot be read to its end (a truncated
	// download, broken array syntax): the results before the break are
	// stored either way, and without Partial the import then fails with
	// ErrIncomplete so that a cut-off file is never taken for a whole one.
	Partial bool
	// Errors receives one line per bad record. Nil discards them (they are
	// still counted in Stats).
	Errors io.Writer
	// Progress receives a progress line every ProgressEvery. Nil means
	// no progress output.
	Progress io.Writer
	// ProgressEvery is the progress interval. 0 means 1 s.
	ProgressEvery time.Duration
	// Now is the clock (for result validation and rates). Nil means
	// time.Now.
	Now func() time.Time
}

// BadRecord is one line or array element that produced no result.
type BadRecord struct {
	Line    int // 1-based NDJSON line, or 0
	Element int // 1-based array element, or 0
	Err     error
}

// Where names the record: "line 7" or "element 3".
func (b BadRecord) Where() string {
	if b.Element > 0 {
		return fmt.Sprintf("element %d", b.Element)
	}
	return fmt.Sprintf("line %d", b.Line)
}

// Stats is the outcome of importing one file.
type Stats struct {
	Name    string
	Size    int64 // bytes on disk; -1 when unknown (stdin)
	Bytes   int64 // bytes read (compressed bytes for gzip input)
	Records int   // lines or array elements read (the last record number)
	Results int   // results parsed (a dns resultset gives one per element)
	New     int   // results stored by this import
	// Duplicate results were already stored (an earlier import) or
	// repeated in the file.
	Duplicate int
	Bad       int         // records that produced no result
	BadShown  []BadRecord // the first bad records (at most 100)
	// Fatal is why reading stopped before the end of the file (I/O
	// error, broken JSON array syntax); the results before it are stored.
	Fatal     error
	OtherDst  int // results whose dst is not an address of the target
	RolledUp  int // days of aggregates rebuilt for the new results
	Probes    int // probe rows written (one per probe per batch)
	NewProbes int // probes seen for the first time
	Elapsed   time.Duration
}

// Rate returns results processed per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Results) / s.Elapsed.Seconds()
}

// Summary is the one-paragraph report of an import.
func (s Stats) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d records, %d results: %d new, %d duplicate; %d bad records; %d new probes; %.1f s, %.0f results/s",
		s.Name, s.Records, s.Results, s.New, s.Duplicate, s.Bad, s.NewProbes, s.Elapsed.Seconds(), s.Rate())
	if s.Bad > 0 {
		var where []string
		for i, r := range s.BadShown {
			if i == 10 {
				where = append(where, "…")
				break
			}
			where = append(where, r.Where())
		}
		fmt.Fprintf(&b, "\n  bad: %s", strings.Join(where, ", "))
	}
	if s.OtherDst > 0 {
		fmt.Fprintf(&b, "\n  note: %d results measured an address that is not one of the target's", s.OtherDst)
	}
	if s.Fatal != nil {
		fmt.Fprintf(&b, "\n  reading stopped early: %v", s.Fatal)
	}
	return b.String()
}

// ImportFile imports the file at path ("-" is stdin). Gzip input is
// recognised by its magic bytes and decompressed. The error is about the
// import as a whole (open failed, store failed, context cancelled, a bad
// record under Strict); problems of single records are in Stats.
func ImportFile(ctx context.Context, opts Options, path string) (Stats, error) {
	if path == "-" {
		return Import(ctx, opts, "stdin", os.Stdin, -1)
	}
	f, err := os.Open(path)
	if err != nil {
		return Stats{Name: path, Size: -1}, fmt.Errorf("import: %w: %w", ErrUnreadable, err)
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return Import(ctx, opts, path, f, size)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Import imports the results in r, named name in messages; size is r's
// length for progress (-1 when unknown).
func Import(ctx context.Context, opts Options, name string, r io.Reader, size int64) (Stats, error) {
	im := newImport(opts, name, size)
	err := im.run(ctx, r)
	im.st.Elapsed = im.now().Sub(im.start)
	if err == nil && im.st.Fatal != nil && !opts.Partial {
		err = fmt.Errorf("import %s: %w: %w (the %s before it are stored; accept partial files with --partial)",
			name, ErrIncomplete, im.st.Fatal, plural(im.st.New, "new result", "new results"))
	}
	return im.st, err
}

type importer struct {
	opts  Options
	st    Stats
	now   func() time.Time
	start time.Time
	cr    *countingReader
	addrs map[netip.Addr]bool

	newDays map[time.Time]bool // UTC days holding newly stored results

	cur *batch // being filled by the reading goroutine

	lastProgress time.Time
}

func newImport(opts Options, name string, size int64) *importer {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Identifier == nil {
		opts.Identifier, _ = catchment.NewIdentifier(nil, nil)
	}
	im := &importer{opts: opts, now: opts.Now, st: Stats{Name: name, Size: size}, addrs: map[netip.Addr]bool{}}
	for _, a := range []string{opts.Target.Addr4, opts.Target.Addr6} {
		if p, err := netip.ParseAddr(a); err == nil {
			im.addrs[p.Unmap()] = true
		}
	}
	im.start = im.now()
	im.lastProgress = im.start
	im.cur = newBatch(opts.BatchSize)
	im.newDays = map[time.Time]bool{}
	return im
}

// ErrIncomplete wraps the error of a file whose reading stopped before
// its end (Stats.Fatal) when Options.Partial is not set. The results read
// before the break are stored.
var ErrIncomplete = errors.New("file read only in part")

// ErrUnreadable wraps the errors of a file that could not be opened or
// decompressed at all (nothing of it was read).
var ErrUnreadable = errors.New("cannot read file")

// errStrict marks the bad record that stopped a strict import.
var errStrict = errors.New("bad record (--strict)")

func (im *importer) run(ctx context.Context, r io.Reader) error {
	if im.opts.Store == nil || im.opts.Target.ID == 0 {
		return errors.New("import: store and target are required")
	}
	im.cr = &countingReader{r: r}
	br := bufio.NewReaderSize(im.cr, 64<<10)
	var src io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("import %s: %w: gzip: %w", im.st.Name, ErrUnreadable, err)
		}
		defer zr.Close()
		src = zr
	}
	ar := atlas.NewReader(src)

	// Reading and parsing (one goroutine) overlap with storing (this one):
	// the database is the slower half. At most three batches are alive:
	// the one being filled, one queued, the one being stored.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := make(chan *batch, 1)
	readErr := make(chan error, 1)
	go func() { // owned by run: it drains full until this goroutine closes it
		defer close(full)
		readErr <- im.read(ctx, ar, full)
	}()
	var storeErr error
	for b := range full {
		if storeErr != nil {
			continue // drain so the reader can finish
		}
		if storeErr = im.flush(ctx, b); storeErr != nil {
			cancel()
		}
	}
	if err := <-readErr; err != nil && storeErr == nil {
		return err
	}
	if storeErr != nil {
		return storeErr
	}
	im.st.Bytes = im.cr.n
	return im.rollup(ctx)
}

// read parses records into batches and sends each full batch (and the last
// one) on full. It owns the reading half of Stats.
func (im *importer) read(ctx context.Context, ar *atlas.Reader, full chan<- *batch) error {
	send := func() error {
		if len(im.cur.rows) == 0 {
			return nil
		}
		select {
		case full <- im.cur:
		case <-ctx.Done():
			return fmt.Errorf("import %s: %w", im.st.Name, ctx.Err())
		}
		im.cur = newBatch(im.opts.BatchSize)
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("import %s: %w", im.st.Name, err)
		}
		it, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			im.st.Fatal = err
			if im.opts.Strict {
				return fmt.Errorf("import %s: %w", im.st.Name, err)
			}
			break
		}
		im.st.Records = max(im.st.Records, it.Line+it.Element)
		if it.Err == nil {
			if verr := it.Result.Validate(im.now()); verr != nil {
				it.Err = fmt.Errorf("invalid result: %w", verr)
			}
		}
		if it.Err != nil {
			if err := im.bad(it); err != nil {
				return err
			}
		} else if err := im.add(it); err != nil {
			return err
		}
		if len(im.cur.rows) >= im.opts.BatchSize {
			if err := send(); err != nil {
				return err
			}
		}
		im.progress(false)
	}
	return send()
}

// batch is one store transaction's worth of results and their probes.
type batch struct {
	rows   []store.ResultRow
	probes map[string]*store.ExternalProbe
	froms  map[string]time.Time // time of the result each probe's Src comes from
}

func newBatch(size int) *batch {
	return &batch{rows: make([]store.ResultRow, 0, size), probes: map[string]*store.ExternalProbe{}, froms: map[string]time.Time{}}
}

// rollup rebuilds the aggregates of the days that got new results, one
// call per run of consecutive days.
func (im *importer) rollup(ctx context.Context) error {
	days := make([]time.Time, 0, len(im.newDays))
	for d := range im.newDays {
		days = append(days, d)
	}
	slices.SortFunc(days, func(a, b time.Time) int { return a.Compare(b) })
	for i := 0; i < len(days); {
		j := i + 1
		for j < len(days) && days[j].Equal(days[j-1].Add(24*time.Hour)) {
			j++
		}
		if err := im.opts.Store.RollupResults(ctx, days[i], days[j-1].Add(24*time.Hour)); err != nil {
			return fmt.Errorf("import %s: %w", im.st.Name, err)
		}
		i = j
	}
	im.st.RolledUp = len(days)
	return nil
}

func (im *importer) bad(it atlas.Item) error {
	b := BadRecord{Line: it.Line, Element: it.Element, Err: it.Err}
	if it.Line == 0 && it.Element == 0 {
		b.Line = im.st.Records
	}
	im.st.Bad++
	if len(im.st.BadShown) < maxKeptBad {
		im.st.BadShown = append(im.st.BadShown, b)
	}
	if im.opts.Errors != nil && im.st.Bad <= maxShownBad {
		fmt.Fprintf(im.opts.Errors, "%s: %s: %v\n", im.st.Name, b.Where(), b.Err)
		if im.st.Bad == maxShownBad {
			fmt.Fprintf(im.opts.Errors, "%s: further bad records are counted, not shown\n", im.st.Name)
		}
	}
	if im.opts.Strict {
		return fmt.Errorf("import %s: %s: %w: %w", im.st.Name, b.Where(), errStrict, b.Err)
	}
	return nil
}

// add turns one parsed result into a row of the current batch.
func (im *importer) add(it atlas.Item) error {
	r := it.Result
	// The atlas package names probes "atlas:<prb_id>" and measurements
	// "atlas:<msm_id>"; check rather than trust, because a result under
	// an enrolled probe's id would corrupt that probe's catchment track.
	if !strings.HasPrefix(r.Probe, store.ExternalProbePrefix) || !strings.HasPrefix(r.Measurement, "atlas:") {
		return fmt.Errorf("import %s: %s: result of probe %q, msm %q outside the atlas namespace", im.st.Name, it.Where(), r.Probe, r.Measurement)
	}
	r.Target = im.opts.Target.Name
	im.st.Results++
	if d, err := netip.ParseAddr(r.Dst); err == nil && len(im.addrs) > 0 && !im.addrs[d.Unmap()] {
		im.st.OtherDst++
	}
	row := store.ResultRow{TargetID: im.opts.Target.ID, Result: r}
	if rtt, ok := r.RTT(); ok {
		row.RTT = &rtt
	}
	if r.Ping != nil && r.Ping.Sent > 0 {
		loss := 1 - float64(r.Ping.Received)/float64(r.Ping.Sent)
		row.Loss = &loss
	}
	if r.Kind == measure.KindDNS || r.Kind == measure.KindIdentity {
		o, err := catchment.ObservationFromResult(im.opts.Target.ID, r, im.opts.Identifier)
		if err != nil {
			o.State = catchment.StateUnreachable
		}
		row.State, row.Site, row.Identity = o.State, o.Site, o.Identity
	}
	b := im.cur
	b.rows = append(b.rows, row)

	p := b.probes[r.Probe]
	if p == nil {
		p = &store.ExternalProbe{ID: r.Probe, FirstSeen: r.Time, LastSeen: r.Time}
		b.probes[r.Probe] = p
	}
	p.FirstSeen = minTime(p.FirstSeen, r.Time)
	p.LastSeen = maxTime(p.LastSeen, r.Time)
	if a, err := netip.ParseAddr(it.Meta.From); err == nil {
		// The address of the probe's latest result in the batch.
		if t, ok := b.froms[r.Probe]; !ok || !r.Time.Before(t) {
			p.Src, b.froms[r.Probe] = a.Unmap(), r.Time
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// flush stores a batch: probes first (so a result never refers to a
// probe row that does not exist), then the results with their catchment
// state.
func (im *importer) flush(ctx context.Context, b *batch) error {
	ps := make([]store.ExternalProbe, 0, len(b.probes))
	geoCache := map[netip.Addr]store.ProbeGeo{}
	for _, p := range b.probes {
		if im.opts.Locate != nil && p.Src.IsValid() {
			g, ok := geoCache[p.Src]
			if !ok {
				i := im.opts.Locate(p.Src)
				g = store.ProbeGeo{ASN: i.ASN, ASName: i.ASName, Prefix: i.Prefix, Country: i.Country,
					Continent: i.Continent, City: i.City, Lat: i.Lat, Lon: i.Lon}
				geoCache[p.Src] = g
			}
			p.Geo = g
		}
		ps = append(ps, *p)
	}
	created, err := im.opts.Store.UpsertExternalProbes(ctx, ps)
	if err != nil {
		return fmt.Errorf("import %s: %w", im.st.Name, err)
	}
	im.st.Probes += len(ps)
	im.st.NewProbes += created
	inserted, err := im.opts.Store.IngestBatch(ctx, b.rows)
	if err != nil {
		return fmt.Errorf("import %s: %w", im.st.Name, err)
	}
	for i, ok := range inserted {
		if ok {
			im.st.New++
			im.newDays[b.rows[i].Result.Time.UTC().Truncate(24*time.Hour)] = true
		} else {
			im.st.Duplicate++
		}
	}
	return nil
}

func (im *importer) progress(final bool) {
	if im.opts.Progress == nil {
		return
	}
	now := im.now()
	if !final && now.Sub(im.lastProgress) < im.opts.ProgressEvery {
		return
	}
	im.lastProgress = now
	el := now.Sub(im.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(im.st.Results) / el
	}
	read := im.cr.n
	line := fmt.Sprintf("%s: %d records, %d results (%.0f/s), %s read", im.st.Name, im.st.Records, im.st.Results, rate, mb(read))
	if im.st.Size > 0 {
		line += fmt.Sprintf(" of %s (%.0f%%)", mb(im.st.Size), 100*float64(read)/float64(im.st.Size))
	}
	if im.st.Bad > 0 {
		line += fmt.Sprintf(", %d bad", im.st.Bad)
	}
	// Whole lines, not a redrawn one: stderr is often a log file.
	fmt.Fprintln(im.opts.Progress, line)
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
