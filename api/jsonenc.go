package api

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

// Hand-written JSON for the per-probe arrays and the aggregates of
// catchment and latency responses: with 10,000 probes encoding/json's
// reflection was most of a catchment request's time. The output is byte
// for byte what encoding/json (HTML escaping off) writes for the same
// values; TestProbeJSONMatchesEncodingJSON and
// TestAggregateJSONMatchesEncodingJSON keep the two in step, so add fields
// in both places. encoding/json refuses NaN and infinities, failing the
// whole value (which jsonStream.value then writes as null): the aggregate
// writers check for them first and leave such values to encoding/json.

// probeTimes formats the times of a run of probes.
type probeTimes struct{ observed, since timeText }

// appendProbeJSON appends p as a JSON object, its times with tt.
func appendProbeJSON(b []byte, p *CatchmentProbe, tt *probeTimes) []byte {
	b = append(b, `{"probe":`...)
	b = appendJSONString(b, p.Probe)
	b = append(b, `,"af":`...)
	b = strconv.AppendInt(b, int64(p.AF), 10)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, string(p.State))
	if p.Site != "" {
		b = append(b, `,"site":`...)
		b = appendJSONString(b, p.Site)
	}
	if p.Identity != "" {
		b = append(b, `,"identity":`...)
		b = appendJSONString(b, p.Identity)
	}
	if p.Source != "" {
		b = append(b, `,"source":`...)
		b = appendJSONString(b, p.Source)
	}
	b = append(b, `,"rtt_ms":`...)
	b = appendJSONFloatPtr(b, p.RTT)
	b = append(b, `,"observed_at":`...)
	b = tt.observed.append(b, p.ObservedAt)
	b = append(b, `,"since":`...)
	b = tt.since.append(b, p.Since)
	b = append(b, `,"lat":`...)
	b = appendJSONFloatPtr(b, p.Lat)
	b = append(b, `,"lon":`...)
	b = appendJSONFloatPtr(b, p.Lon)
	if p.Country != "" {
		b = append(b, `,"country":`...)
		b = appendJSONString(b, p.Country)
	}
	if p.Continent != "" {
		b = append(b, `,"continent":`...)
		b = appendJSONString(b, p.Continent)
	}
	b = append(b, `,"asn":`...)
	if p.ASN == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *p.ASN, 10)
	}
	return append(b, '}')
}

// appendInflatedJSON appends in as a JSON object (catchment.Inflated).
// Baselines repeat (one per group) and are formatted once, in baselines.
func appendInflatedJSON(b []byte, in *catchment.Inflated, baselines map[uint64]string) []byte {
	b = append(b, `{"probe":`...)
	b = appendJSONString(b, in.Probe)
	b = append(b, `,"group":`...)
	b = appendJSONString(b, in.Group)
	b = append(b, `,"site":`...)
	b = appendJSONString(b, in.Site)
	b = append(b, `,"rtt":`...)
	b = appendJSONFloat(b, in.RTT)
	b = append(b, `,"baseline":`...)
	bits := math.Float64bits(in.Baseline)
	text, ok := baselines[bits]
	if !ok {
		text = string(appendJSONFloat(nil, in.Baseline))
		baselines[bits] = text
	}
	b = append(b, text...)
	b = append(b, `,"baseline_source":`...)
	b = appendJSONString(b, in.BaselineSource)
	b = append(b, `,"baseline_site":`...)
	b = appendJSONString(b, in.BaselineSite)
	if in.BaselineProbe != "" {
		b = append(b, `,"baseline_probe":`...)
		b = appendJSONString(b, in.BaselineProbe)
	}
	b = append(b, `,"extra_ms":`...)
	b = appendJSONFloat(b, in.ExtraMS)
	b = append(b, `,"ratio":`...)
	b = appendJSONFloat(b, in.Ratio)
	return append(b, '}')
}

// appendLatencyStatsJSON appends st as a JSON object
// (catchment.LatencyStats); st's floats must be finite.
func appendLatencyStatsJSON(b []byte, st *catchment.LatencyStats) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, st.Key)
	b = append(b, `,"probes":`...)
	b = strconv.AppendInt(b, int64(st.Probes), 10)
	b = append(b, `,"loss":`...)
	b = appendJSONFloat(b, st.Loss)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(st.Count), 10)
	b = appendRTTStatsJSON(b, st.Min, st.P50, st.P90, st.P99, st.Max)
	return append(b, '}')
}

// appendRTTStatsJSON appends the omitempty min, p50, p90, p99 and max
// members of latency statistics. Statistics of one RTT (most cells of a
// group × site matrix) have five equal values, formatted once.
func appendRTTStatsJSON(b []byte, lo, p50, p90, p99, hi *float64) []byte {
	var last []byte // the previous value's text, in b
	lastBits := uint64(0)
	for _, m := range [...]struct {
		name string
		v    *float64
	}{{`,"min":`, lo}, {`,"p50":`, p50}, {`,"p90":`, p90}, {`,"p99":`, p99}, {`,"max":`, hi}} {
		if m.v == nil {
			continue
		}
		b = append(b, m.name...)
		if bits := math.Float64bits(*m.v); last != nil && bits == lastBits {
			b = append(b, last...)
		} else {
			n := len(b)
			b = appendJSONFloat(b, *m.v)
			last, lastBits = b[n:len(b):len(b)], bits
		}
	}
	return b
}

func latencyStatsFinite(st *catchment.LatencyStats) bool {
	return finite(st.Loss) && finitePtrs(st.Min, st.P50, st.P90, st.P99, st.Max)
}

// appendGroupSiteJSON appends c as a JSON object; c's floats must be
// finite.
func appendGroupSiteJSON(b []byte, c *GroupSiteLatency) []byte {
	b = append(b, `{"group":`...)
	b = appendJSONString(b, c.Group)
	b = append(b, `,"site":`...)
	b = appendJSONString(b, c.Site)
	b = append(b, `,"probes":`...)
	b = strconv.AppendInt(b, int64(c.Probes), 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(c.Count), 10)
	b = append(b, `,"loss":`...)
	b = appendJSONFloat(b, c.Loss)
	b = appendRTTStatsJSON(b, c.Min, c.P50, c.P90, c.P99, c.Max)
	b = append(b, `,"inflated_probes":`...)
	b = strconv.AppendInt(b, int64(c.InflatedProbes), 10)
	b = append(b, `,"inflated":`...)
	b = strconv.AppendBool(b, c.Inflated)
	return append(b, '}')
}

func groupSiteFinite(c *GroupSiteLatency) bool {
	return finite(c.Loss) && finitePtrs(c.Min, c.P50, c.P90, c.P99, c.Max)
}

// appendGroupJSON appends g as a JSON object (catchment.Group); g's
// floats must be finite.
func appendGroupJSON(b []byte, g *catchment.Group) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, g.Key)
	b = append(b, `,"probes":`...)
	b = strconv.AppendInt(b, int64(g.Probes), 10)
	b = append(b, `,"sites":`...)
	if g.Sites == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range g.Sites {
			ss := &g.Sites[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"site":`...)
			b = appendJSONString(b, ss.Site)
			b = append(b, `,"probes":`...)
			b = strconv.AppendInt(b, int64(ss.Probes), 10)
			b = append(b, `,"share":`...)
			b = appendJSONFloat(b, ss.Share)
			if ss.MedianRTT != nil {
				b = append(b, `,"median_rtt":`...)
				b = appendJSONFloat(b, *ss.MedianRTT)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"unidentified":`...)
	b = strconv.AppendInt(b, int64(g.Unidentified), 10)
	b = append(b, `,"unreachable":`...)
	b = strconv.AppendInt(b, int64(g.Unreachable), 10)
	if len(g.Unmapped) > 0 {
		// encoding/json sorts map keys
		keys := make([]string, 0, len(g.Unmapped))
		for k := range g.Unmapped {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"unmapped":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(g.Unmapped[k]), 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func groupFinite(g *catchment.Group) bool {
	for i := range g.Sites {
		if !finite(g.Sites[i].Share) || !finitePtrs(g.Sites[i].MedianRTT) {
			return false
		}
	}
	return true
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func finitePtrs(fs ...*float64) bool {
	for _, f := range fs {
		if f != nil && !finite(*f) {
			return false
		}
	}
	return true
}

// appendFeatureJSON appends p as a GeoJSON Point feature (p must have a
// position), the shape geoFeature has under encoding/json.
func appendFeatureJSON(b []byte, p *CatchmentProbe, tt *probeTimes) []byte {
	b = append(b, `{"type":"Feature","geometry":{"type":"Point","coordinates":[`...)
	b = appendJSONFloat(b, *p.Lon)
	b = append(b, ',')
	b = appendJSONFloat(b, *p.Lat)
	b = append(b, `]},"properties":`...)
	b = appendProbeJSON(b, p, tt)
	return append(b, '}')
}

// appendJSONValue appends v as encoding/json writes it, without the
// trailing newline of an Encoder.
func appendJSONValue(b []byte, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return append(b, "null"...)
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

// appendJSONString appends s quoted. Plain printable ASCII, which probe
// ids, site codes and country codes are, is copied; anything else goes
// through encoding/json for its exact escaping rules.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			return appendJSONValue(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonPlain tells the bytes appendJSONString copies as they are.
var jsonPlain = func() (plain [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		plain[c] = c != '"' && c != '\\'
	}
	return plain
}()

// appendJSONFloat formats f as encoding/json does (shortest repr, 'e' form
// outside [1e-6, 1e21)); NaN and infinities, which encoding/json refuses,
// become null.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func appendJSONFloatPtr(b []byte, f *float64) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	return appendJSONFloat(b, *f)
}

// appendJSONTime appends t as RFC 3339 with nanoseconds, quoted, or null
// outside years 0-9999 (what encoding/json writes for times whose zone
// offset is whole minutes under a day).
func appendJSONTime(b []byte, t time.Time) []byte {
	var tt timeText
	return tt.append(b, t)
}

// timeText formats times as appendJSONTime does. Times at UTC offset 0,
// which is how they come from the store, are formatted here, the date
// text of the last two days reused; others by package time.
type timeText struct {
	days [2]struct {
		day  int64    // days since 1970-01-01, when ok
		date [11]byte // "2006-01-02T"
		ok   bool
	}
	next int // the entry of days to replace
}

func (tt *timeText) append(b []byte, t time.Time) []byte {
	if t.Location() != time.UTC {
		if _, offset := t.Zone(); offset != 0 {
			if y := t.Year(); y < 0 || y > 9999 {
				return append(b, "null"...)
			}
			b = append(b, '"')
			b = t.AppendFormat(b, time.RFC3339Nano)
			return append(b, '"')
		}
		t = t.UTC() // the same wall clock
	}
	sec := t.Unix()
	day := sec / 86400
	if sec%86400 < 0 {
		day--
	}
	d := &tt.days[0]
	if !d.ok || d.day != day {
		d = &tt.days[1]
		if !d.ok || d.day != day {
			y, mo, dd := t.Date()
			if y < 0 || y > 9999 {
				return append(b, "null"...)
			}
			d = &tt.days[tt.next]
			tt.next ^= 1
			d.date = [11]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
				byte('0' + mo/10), byte('0' + mo%10), '-', byte('0' + dd/10), byte('0' + dd%10), 'T'}
			d.day, d.ok = day, true
		}
	}
	s := uint32(sec - day*86400)
	h, mi := 2*(s/3600), 2*(s/60%60)
	s = 2 * (s % 60)
	b = append(b, '"')
	b = append(b, d.date[:]...)
	b = append(b, digits2[h], digits2[h+1], ':', digits2[mi], digits2[mi+1], ':', digits2[s], digits2[s+1])
	if ns := uint32(t.Nanosecond()); ns != 0 {
		// as RFC3339Nano: a fraction without trailing zeros
		var f [10]byte
		f[0], f[9] = '.', byte('0'+ns%10)
		ns /= 10
		for i := 7; i > 0; i -= 2 {
			p := 2 * (ns % 100)
			f[i], f[i+1] = digits2[p], digits2[p+1]
			ns /= 100
		}
		n := len(f)
		for f[n-1] == '0' {
			n--
		}
		b = append(b, f[:n]...)
	}
	return append(b, 'Z', '"')
}

// digits2 holds "00" to "99".
const digits2 = "0001020304050607080910111213141516171819" +
	"2021222324252627282930313233343536373839" +
	"4041424344454647484950515253545556575859" +
	"6061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// jsonStream writes a large JSON document in pieces: the document is
// appended to b, which goes to w whenever it holds a chunk, so a response
// never sits in memory whole and elements are not copied once more.
type jsonStream struct {
	w   io.Writer
	b   []byte // not yet written
	err error
}

// jsonChunk is how much a jsonStream holds before it writes.
const jsonChunk = 32 << 10

func newJSONStream(w io.Writer) *jsonStream {
	return &jsonStream{w: w, b: make([]byte, 0, jsonChunk+4<<10)}
}

func (s *jsonStream) raw(p string) {
	s.b = append(s.b, p...)
	s.spill()
}

// spill writes b once it holds a chunk.
func (s *jsonStream) spill() {
	if len(s.b) >= jsonChunk {
		s.write()
	}
}

func (s *jsonStream) write() {
	if s.err == nil && len(s.b) > 0 {
		_, s.err = s.w.Write(s.b)
	}
	s.b = s.b[:0]
}

// value writes v with encoding/json (small parts of a document).
func (s *jsonStream) value(v any) {
	s.b = appendJSONValue(s.b, v)
	s.spill()
}

// probes writes a JSON array of probes, or of their features when
// features is set (probes without a position are left out then).
func (s *jsonStream) probes(ps *publishedProbes, features bool) {
	s.raw("[")
	first := true
	var tt probeTimes
	var pos [2]float64
	for i := range ps.rows {
		probe := ps.probe(i, &pos)
		p := &probe
		if features && (p.Lat == nil || p.Lon == nil) {
			continue
		}
		if !first {
			s.b = append(s.b, ',')
		}
		first = false
		if features {
			s.b = appendFeatureJSON(s.b, p, &tt)
		} else {
			s.b = appendProbeJSON(s.b, p, &tt)
		}
		s.spill()
	}
	s.raw("]")
}

// array writes list as a JSON array (null when nil) with appendElem, or
// all of it with encoding/json when an element is not ok for appendElem
// (see finite).
func array[T any](s *jsonStream, list []T, ok func(*T) bool, appendElem func([]byte, *T) []byte) {
	if list == nil {
		s.raw("null")
		return
	}
	for i := range list {
		if !ok(&list[i]) {
			s.value(list)
			return
		}
	}
	s.raw("[")
	for i := range list {
		if i > 0 {
			s.b = append(s.b, ',')
		}
		s.b = appendElem(s.b, &list[i])
		s.spill()
	}
	s.raw("]")
}

// object writes v with appendValue, or with encoding/json when it is not
// ok for appendValue.
func object[T any](s *jsonStream, v *T, ok func(*T) bool, appendValue func([]byte, *T) []byte) {
	if !ok(v) {
		s.value(*v)
		return
	}
	s.b = appendValue(s.b, v)
	s.spill()
}

// flush writes what is left and returns the first error writing.
func (s *jsonStream) flush() error {
	s.write()
	return s.err
}
