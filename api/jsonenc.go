package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/anycatch/anycatch/catchment"
)

// Hand-written JSON for the per-probe arrays of catchment and latency responses: with
// 10,000 probes encoding/json's reflection was most of a catchment
// request's time. The output is byte for byte what encoding/json (HTML
// escaping off) writes for the same values; TestProbeJSONMatchesEncodingJSON
// keeps the two in step, so add fields in both places.

// appendProbeJSON appends p as a JSON object.
func appendProbeJSON(b []byte, p *CatchmentProbe) []byte {
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
	b = append(b, `,"rtt_ms":`...)
	b = appendJSONFloatPtr(b, p.RTT)
	b = append(b, `,"observed_at":`...)
	b = appendJSONTime(b, p.ObservedAt)
	b = append(b, `,"since":`...)
	b = appendJSONTime(b, p.Since)
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
func appendInflatedJSON(b []byte, in *catchment.Inflated) []byte {
	b = append(b, `{"probe":`...)
	b = appendJSONString(b, in.Probe)
	b = append(b, `,"group":`...)
	b = appendJSONString(b, in.Group)
	b = append(b, `,"site":`...)
	b = appendJSONString(b, in.Site)
	b = append(b, `,"rtt":`...)
	b = appendJSONFloat(b, in.RTT)
	b = append(b, `,"baseline":`...)
	b = appendJSONFloat(b, in.Baseline)
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

// appendFeatureJSON appends p as a GeoJSON Point feature (p must have a
// position), the shape geoFeature has under encoding/json.
func appendFeatureJSON(b []byte, p *CatchmentProbe) []byte {
	b = append(b, `{"type":"Feature","geometry":{"type":"Point","coordinates":[`...)
	b = appendJSONFloat(b, *p.Lon)
	b = append(b, ',')
	b = appendJSONFloat(b, *p.Lat)
	b = append(b, `]},"properties":`...)
	b = appendProbeJSON(b, p)
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
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return appendJSONValue(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

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

func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// jsonStream writes a large JSON document in pieces through a buffer,
// so a response never sits in memory whole.
type jsonStream struct {
	w   *bufio.Writer
	b   []byte // scratch for one element
	err error
}

func newJSONStream(w io.Writer) *jsonStream {
	return &jsonStream{w: bufio.NewWriterSize(w, 64<<10), b: make([]byte, 0, 512)}
}

func (s *jsonStream) raw(p string) {
	if s.err == nil {
		_, s.err = s.w.WriteString(p)
	}
}

func (s *jsonStream) bytes(p []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(p)
	}
}

// value writes v with encoding/json (small parts of a document).
func (s *jsonStream) value(v any) {
	s.b = appendJSONValue(s.b[:0], v)
	s.bytes(s.b)
}

// probes writes a JSON array of probes, or of their features when
// features is set (probes without a position are left out then).
func (s *jsonStream) probes(ps []CatchmentProbe, features bool) {
	s.raw("[")
	first := true
	for i := range ps {
		p := &ps[i]
		if features && (p.Lat == nil || p.Lon == nil) {
			continue
		}
		s.b = s.b[:0]
		if !first {
			s.b = append(s.b, ',')
		}
		first = false
		if features {
			s.b = appendFeatureJSON(s.b, p)
		} else {
			s.b = appendProbeJSON(s.b, p)
		}
		s.bytes(s.b)
	}
	s.raw("]")
}

func (s *jsonStream) flush() error {
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}
