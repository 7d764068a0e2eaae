// Package spool is the probe's crash-safe on-disk queue of results.
//
// Results are appended to segment files as length-prefixed, CRC-32C checked
// records and fsync'd before Append returns, so a result the agent was told
// is spooled survives kill -9 and power loss. The uploader reads the oldest
// pending results with [Spool.Peek] and, once the collector has committed
// (or definitively rejected) them, removes them with [Spool.Ack]. Acks are
// appended to a small sidecar file per segment; a segment whose records are
// all acknowledged is deleted. Delivery is at-least-once: an ack lost in a
// crash re-sends a result the collector already has, which it deduplicates
// by id.
//
// The spool is bounded by total bytes and by age. When full, whole oldest
// segments are dropped; results older than MaxAge are dropped when next
// seen. Every dropped result is counted in a persistent counter
// ([Stats].Dropped) so an operator can see what an outage cost.
//
// On open, a torn record at the end of a segment (a write cut short by a
// crash) fails its length or CRC check and the segment is truncated there.
package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// Options configure a spool. The zero value is usable.
type Options struct {
	// MaxBytes bounds the spool's files on disk; 0 means 64 MiB. When an
	// append would exceed it, the oldest segments are dropped.
	MaxBytes int64
	// MaxAge drops results older than this; 0 means 7 days.
	MaxAge time.Duration
	// SegmentBytes is the size at which a segment is sealed and a new one
	// started; 0 means MaxBytes/16 clamped to [64 KiB, 4 MiB]. It is
	// capped at MaxBytes/4 so dropping old segments can always make room.
	SegmentBytes int64
	// NoSync skips fsync. Only for tests and benchmarks: without it an
	// acknowledged append can be lost on power failure.
	NoSync bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(max(o.MaxBytes/16, 64<<10), 4<<20)
	}
	o.SegmentBytes = max(min(o.SegmentBytes, o.MaxBytes/4), 1)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Entry is one pending result as stored.
type Entry struct {
	ID   measure.UUID
	Time time.Time // when it was appended
	Data []byte    // the result as one line of JSON, without newline

	seg uint64
	off int64
}

// Stats describe the spool's state.
type Stats struct {
	Pending  int       `json:"pending"`  // results waiting for the collector
	Bytes    int64     `json:"bytes"`    // on disk, including acknowledged records not yet deleted
	Segments int       `json:"segments"` // segment files
	Dropped  int64     `json:"dropped"`  // results dropped by size or age limit, ever (persistent)
	Corrupt  int64     `json:"corrupt"`  // records lost to corruption found on open or read (persistent)
	Oldest   time.Time `json:"oldest,omitzero"`
}

// ErrTooLarge is returned by Append for a result bigger than MaxRecordBytes.
var ErrTooLarge = errors.New("result larger than the spool's record limit")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spool closed")

type recInfo struct {
	off    int64
	size   int32 // whole record, header included
	acked  bool
	timeMS int64
	id     measure.UUID
}

type segment struct {
	seq     uint64
	f       *os.File
	size    int64
	ackf    *os.File // opened on first ack
	ackSize int64
	recs    []recInfo
	pending int
}

// Spool is a crash-safe result queue in one directory. Its methods are safe
// for concurrent use; one process at a time may open a directory.
type Spool struct {
	dir  string
	opt  Options
	lock *os.File

	mu      sync.Mutex
	segs    []*segment // oldest first; the last may be active
	active  *segment   // nil until the next Append needs one
	nextSeq uint64
	bytes   int64
	meta    meta
	buf     []byte
	closed  bool
}

type meta struct {
	Dropped int64 `json:"dropped"`
	Corrupt int64 `json:"corrupt"`
}

const metaFile = "spool.json"

// Open opens (creating if needed) the spool in dir, recovering from any
// crash: torn tails are truncated and fully acknowledged segments removed.
func Open(dir string, opt Options) (*Spool, error) {
	opt = opt.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open spool: %s is in use by another process: %w", dir, err)
	}
	s := &Spool{dir: dir, opt: opt, lock: lock}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("open spool: %w", err)
	}
	return s, nil
}

func (s *Spool) load() error {
	if b, err := os.ReadFile(filepath.Join(s.dir, metaFile)); err == nil {
		// A damaged meta file only loses counters; never refuse to start.
		_ = json.Unmarshal(b, &s.meta)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	segSeqs := map[uint64]bool{}
	var ackSeqs []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(s.dir, name))
			continue
		}
		ext := filepath.Ext(name)
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, ext), 16, 64)
		if err != nil {
			continue
		}
		switch ext {
		case ".seg":
			segSeqs[seq] = true
		case ".ack":
			ackSeqs = append(ackSeqs, seq)
		}
	}
	for _, seq := range ackSeqs {
		if !segSeqs[seq] { // segment deleted, crash before its ack file went
			os.Remove(s.ackPath(seq))
		}
	}
	seqs := make([]uint64, 0, len(segSeqs))
	for seq := range segSeqs {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	corrupt := s.meta.Corrupt
	for i, seq := range seqs {
		sg, err := s.loadSegment(seq, i == len(seqs)-1)
		if err != nil {
			return err
		}
		s.nextSeq = seq + 1
		if sg.pending == 0 {
			s.removeSegment(sg)
			continue
		}
		s.segs = append(s.segs, sg)
		s.bytes += sg.size + sg.ackSize
	}
	if s.meta.Corrupt != corrupt {
		return s.saveMeta()
	}
	return nil
}

func (s *Spool) segPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x.seg", seq))
}
func (s *Spool) ackPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x.ack", seq))
}

// loadSegment scans one segment, truncates anything after the last valid
// record, and applies its acks.
func (s *Spool) loadSegment(seq uint64, newest bool) (*segment, error) {
	f, err := os.OpenFile(s.segPath(seq), os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	sg := &segment{seq: seq, f: f}
	off := 0
	for off < len(data) {
		r, n, err := decodeRecord(data[off:])
		if err != nil {
			break
		}
		sg.recs = append(sg.recs, recInfo{off: int64(off), size: int32(n), timeMS: r.timeMS, id: r.id})
		off += n
	}
	if off < len(data) {
		// A torn tail is expected in the newest segment after a crash;
		// anywhere else it is corruption. Nothing after it can be
		// framed, so truncate either way.
		if err := f.Truncate(int64(off)); err != nil {
			f.Close()
			return nil, fmt.Errorf("truncate torn segment %x: %w", seq, err)
		}
		if !s.opt.NoSync {
			f.Sync()
		}
		if !newest {
			s.meta.Corrupt++
		}
	}
	sg.size = int64(off)
	sg.pending = len(sg.recs)
	acks, err := os.ReadFile(s.ackPath(seq))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return nil, err
	}
	good := 0
	for good+ackSize <= len(acks) {
		o, ok := decodeAck(acks[good:])
		if !ok {
			break
		}
		if i := sg.find(o); i >= 0 && !sg.recs[i].acked {
			sg.recs[i].acked = true
			sg.pending--
		}
		good += ackSize
	}
	if good < len(acks) {
		if err := os.Truncate(s.ackPath(seq), int64(good)); err != nil {
			f.Close()
			return nil, fmt.Errorf("truncate torn ack file %x: %w", seq, err)
		}
	}
	sg.ackSize = int64(good)
	return sg, nil
}

func (sg *segment) find(off int64) int {
	i := sort.Search(len(sg.recs), func(i int) bool { return sg.recs[i].off >= off })
	if i < len(sg.recs) && sg.recs[i].off == off {
		return i
	}
	return -1
}

// Append stores r durably (fsync'd unless NoSync) before returning.
func (s *Spool) Append(r *measure.Result) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("spool append: %w", err)
	}
	return s.AppendRaw(r.ID, data)
}

// AppendRaw stores an already encoded result (one line of JSON) under id.
func (s *Spool) AppendRaw(id measure.UUID, data []byte) error {
	if len(data) > MaxRecordBytes {
		return fmt.Errorf("spool append: %w (%d bytes)", ErrTooLarge, len(data))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	size := int64(headerSize + bodyFixedSize + len(data))
	if s.active != nil && s.active.size > 0 && s.active.size+size > s.opt.SegmentBytes {
		s.seal()
	}
	if err := s.makeRoom(size); err != nil {
		return fmt.Errorf("spool append: %w", err)
	}
	if s.active == nil {
		if err := s.newSegment(); err != nil {
			return fmt.Errorf("spool append: %w", err)
		}
	}
	sg := s.active
	now := s.opt.Now().UnixMilli()
	s.buf = appendRecord(s.buf[:0], record{timeMS: now, id: id, data: data})
	if _, err := sg.f.WriteAt(s.buf, sg.size); err != nil {
		sg.f.Truncate(sg.size) // best effort: leave no partial record behind
		return fmt.Errorf("spool append: %w", err)
	}
	if !s.opt.NoSync {
		if err := sg.f.Sync(); err != nil {
			// Not known to be durable: take the record back out so the
			// segment's in-memory index and the file agree, and the
			// next append does not land on top of it. The caller
			// learns the result was not spooled.
			sg.f.Truncate(sg.size)
			return fmt.Errorf("spool append: sync: %w", err)
		}
	}
	sg.recs = append(sg.recs, recInfo{off: sg.size, size: int32(len(s.buf)), timeMS: now, id: id})
	sg.pending++
	sg.size += int64(len(s.buf))
	s.bytes += int64(len(s.buf))
	if cap(s.buf) > 1<<20 {
		s.buf = nil // don't pin one huge result's buffer
	}
	return nil
}

// seal stops appending to the active segment; its file stays open for reads.
func (s *Spool) seal() {
	if s.active != nil && !s.opt.NoSync {
		s.active.f.Sync()
	}
	s.active = nil
}

func (s *Spool) newSegment() error {
	seq := s.nextSeq
	f, err := os.OpenFile(s.segPath(seq), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	s.nextSeq++
	if err := s.syncDir(); err != nil {
		f.Close()
		os.Remove(s.segPath(seq))
		return err
	}
	sg := &segment{seq: seq, f: f}
	s.segs = append(s.segs, sg)
	s.active = sg
	return nil
}

// makeRoom drops the oldest segments until size more bytes fit.
func (s *Spool) makeRoom(size int64) error {
	dropped := int64(0)
	for s.bytes+size > s.opt.MaxBytes && len(s.segs) > 0 {
		sg := s.segs[0]
		if sg == s.active {
			s.seal()
		}
		dropped += int64(sg.pending)
		s.segs = s.segs[1:]
		s.bytes -= sg.size + sg.ackSize
		s.removeSegment(sg)
	}
	if dropped > 0 {
		s.meta.Dropped += dropped
		if err := s.saveMeta(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) removeSegment(sg *segment) {
	sg.f.Close()
	if sg.ackf != nil {
		sg.ackf.Close()
	}
	// Segment first: a crash between the two leaves an orphan ack file,
	// which Open removes, rather than a segment whose acks are gone.
	os.Remove(s.segPath(sg.seq))
	os.Remove(s.ackPath(sg.seq))
	s.syncDir()
}

func (s *Spool) syncDir() error {
	if s.opt.NoSync {
		return nil
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *Spool) saveMeta() error {
	b, _ := json.Marshal(s.meta)
	tmp := filepath.Join(s.dir, metaFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save spool counters: %w", err)
	}
	if !s.opt.NoSync {
		if f, err := os.Open(tmp); err == nil {
			f.Sync()
			f.Close()
		}
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, metaFile)); err != nil {
		return fmt.Errorf("save spool counters: %w", err)
	}
	return s.syncDir()
}

// Peek returns up to maxRecords of the oldest pending results, stopping
// before maxBytes of Data (but always returning at least one when any is
// pending). Results stay pending until acknowledged; a second Peek returns
// them again. Results older than MaxAge are dropped and counted on the way.
func (s *Spool) Peek(maxRecords, maxBytes int) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.expire(); err != nil {
		return nil, fmt.Errorf("spool peek: %w", err)
	}
	var out []Entry
	total := 0
	var bad []recRef
	for _, sg := range s.segs {
		for i := range sg.recs {
			ri := &sg.recs[i]
			if ri.acked {
				continue
			}
			if len(out) >= maxRecords || len(out) > 0 && total+int(ri.size) > maxBytes {
				return out, s.dropCorrupt(bad)
			}
			buf := make([]byte, ri.size)
			if _, err := sg.f.ReadAt(buf, ri.off); err != nil {
				return nil, fmt.Errorf("spool peek: read segment %x: %w", sg.seq, err)
			}
			r, _, err := decodeRecord(buf)
			if err != nil || r.id != ri.id {
				bad = append(bad, recRef{sg, i})
				continue
			}
			out = append(out, Entry{ID: r.id, Time: time.UnixMilli(r.timeMS), Data: r.data, seg: sg.seq, off: ri.off})
			total += len(r.data)
		}
	}
	return out, s.dropCorrupt(bad)
}

type recRef struct {
	sg *segment
	i  int
}

// dropCorrupt acks records that no longer pass their CRC (bit rot after
// open) so they cannot block the queue, and counts them.
func (s *Spool) dropCorrupt(bad []recRef) error {
	if len(bad) == 0 {
		return nil
	}
	s.meta.Corrupt += int64(len(bad))
	if err := s.ackRefs(bad); err != nil {
		return err
	}
	return s.saveMeta()
}

// expire drops pending results older than MaxAge.
func (s *Spool) expire() error {
	cutoff := s.opt.Now().Add(-s.opt.MaxAge).UnixMilli()
	var old []recRef
scan:
	for _, sg := range s.segs {
		for i := range sg.recs {
			if sg.recs[i].timeMS >= cutoff {
				break scan // appends are time-ordered
			}
			if !sg.recs[i].acked {
				old = append(old, recRef{sg, i})
			}
		}
	}
	if len(old) == 0 {
		return nil
	}
	s.meta.Dropped += int64(len(old))
	if err := s.ackRefs(old); err != nil {
		return err
	}
	return s.saveMeta()
}

// Ack removes entries returned by Peek for good. Unknown or already
// acknowledged entries are ignored.
func (s *Spool) Ack(entries []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	bySeq := make(map[uint64]*segment, len(s.segs))
	for _, sg := range s.segs {
		bySeq[sg.seq] = sg
	}
	refs := make([]recRef, 0, len(entries))
	for _, e := range entries {
		sg := bySeq[e.seg]
		if sg == nil {
			continue
		}
		if i := sg.find(e.off); i >= 0 && !sg.recs[i].acked && sg.recs[i].id == e.ID {
			refs = append(refs, recRef{sg, i})
		}
	}
	if err := s.ackRefs(refs); err != nil {
		return fmt.Errorf("spool ack: %w", err)
	}
	return nil
}

// ackRefs durably marks records acknowledged, one fsync per segment, and
// deletes segments left with nothing pending.
func (s *Spool) ackRefs(refs []recRef) error {
	sort.SliceStable(refs, func(a, b int) bool { return refs[a].sg.seq < refs[b].sg.seq })
	for start := 0; start < len(refs); {
		sg := refs[start].sg
		end := start
		buf := s.buf[:0]
		for end < len(refs) && refs[end].sg == sg {
			if !sg.recs[refs[end].i].acked {
				buf = appendAck(buf, sg.recs[refs[end].i].off)
			}
			end++
		}
		s.buf = buf
		if err := s.writeAcks(sg, buf); err != nil {
			return err
		}
		for _, r := range refs[start:end] {
			if !sg.recs[r.i].acked {
				sg.recs[r.i].acked = true
				sg.pending--
			}
		}
		start = end
		if sg.pending == 0 {
			if sg == s.active {
				s.active = nil
			}
			for i, x := range s.segs {
				if x == sg {
					s.segs = append(s.segs[:i], s.segs[i+1:]...)
					break
				}
			}
			s.bytes -= sg.size + sg.ackSize
			s.removeSegment(sg)
		}
	}
	return nil
}

func (s *Spool) writeAcks(sg *segment, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if sg.ackf == nil {
		f, err := os.OpenFile(s.ackPath(sg.seq), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		sg.ackf = f
		if err := s.syncDir(); err != nil {
			return err
		}
	}
	if _, err := sg.ackf.WriteAt(buf, sg.ackSize); err != nil {
		sg.ackf.Truncate(sg.ackSize)
		return err
	}
	if !s.opt.NoSync {
		if err := sg.ackf.Sync(); err != nil {
			return err
		}
	}
	sg.ackSize += int64(len(buf))
	s.bytes += int64(len(buf))
	return nil
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Bytes: s.bytes, Segments: len(s.segs), Dropped: s.meta.Dropped, Corrupt: s.meta.Corrupt}
	for _, sg := range s.segs {
		st.Pending += sg.pending
		if st.Oldest.IsZero() {
			for _, r := range sg.recs {
				if !r.acked {
					st.Oldest = time.UnixMilli(r.timeMS).UTC()
					break
				}
			}
		}
	}
	return st
}

// Close syncs and closes the spool and releases the directory lock.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.active != nil && !s.opt.NoSync {
		err = s.active.f.Sync()
	}
	s.closeFiles()
	return err
}

func (s *Spool) closeFiles() {
	for _, sg := range s.segs {
		sg.f.Close()
		if sg.ackf != nil {
			sg.ackf.Close()
		}
	}
	s.segs, s.active = nil, nil
	if s.lock != nil {
		s.lock.Close() // releases the flock
	}
}
