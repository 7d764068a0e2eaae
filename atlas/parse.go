// Package atlas converts RIPE Atlas results (dns, ping and traceroute, in
// the result formats of every probe firmware from 0 to 5000+) into
// anycatch's [measure.Result], and anycatch results back into an
// Atlas-like JSON shape ([FromResult]).
//
// Imported results get deterministic ids (UUIDv7 from the Atlas timestamp
// plus a hash of msm_id, prb_id, timestamp and resultset index), so
// importing the same file twice stores nothing new. Probes are named
// "atlas:<prb_id>", measurements "atlas:<msm_id>".
//
// [NewReader] streams a file of results (a JSON array or NDJSON) one result
// at a time in constant memory; every element or line is either returned
// as a result or as an error item carrying its number.
package atlas

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/anycatch/anycatch/measure"
)

// Meta is the Atlas metadata of one result that has no place in
// measure.Result.
type Meta struct {
	ProbeID   int    `json:"prb_id"`
	MsmID     int    `json:"msm_id"`
	GroupID   int    `json:"group_id,omitempty"`
	Type      string `json:"type"`
	From      string `json:"from,omitempty"` // the probe's public address as Atlas saw it
	FW        int    `json:"fw"`
	LTS       *int   `json:"lts,omitempty"` // seconds since the probe last synchronised its clock (-1: unknown)
	Timestamp int64  `json:"timestamp"`     // the result's Atlas timestamp (unix s)
	// Sub is the 0-based index in a "resultset", or -1 for a plain result.
	Sub int `json:"sub"`
}

// Parsed is one converted result.
type Parsed struct {
	Result *measure.Result
	Meta   Meta
}

// ProbeName returns anycatch's probe id for an Atlas probe.
func ProbeName(prbID int) string { return "atlas:" + strconv.Itoa(prbID) }

// MeasurementName returns anycatch's measurement id for an Atlas measurement.
func MeasurementName(msmID int) string { return "atlas:" + strconv.Itoa(msmID) }

// num is an Atlas number: a JSON number, a numeric string (firmware 0),
// or null/"" (absent).
type num struct {
	v  float64
	ok bool
}

func (n *num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("not a number (%.40s)", b)
	}
	n.v, n.ok = v, true
	return nil
}

func (n num) int() int { return int(n.v) }

// ptr returns the value when present and not negative (Atlas writes -1
// for "none").
func (n num) ptr() *float64 {
	if !n.ok || n.v < 0 {
		return nil
	}
	v := n.v
	return &v
}

type rawResult struct {
	Type      string          `json:"type"`
	FW        num             `json:"fw"`
	MsmID     num             `json:"msm_id"`
	PrbID     num             `json:"prb_id"`
	GroupID   num             `json:"group_id"`
	Timestamp num             `json:"timestamp"`
	Endtime   num             `json:"endtime"`
	LTS       num             `json:"lts"`
	From      string          `json:"from"`
	SrcAddr   string          `json:"src_addr"`
	DstAddr   string          `json:"dst_addr"`
	DstName   string          `json:"dst_name"`
	Addr      string          `json:"addr"` // firmware 1 ping
	AF        num             `json:"af"`
	Proto     string          `json:"proto"`
	Size      num             `json:"size"`
	ParisID   num             `json:"paris_id"`
	Error     json.RawMessage `json:"error"`
	Result    json.RawMessage `json:"result"`
	Resultset []rawSub        `json:"resultset"`
	Qbuf      string          `json:"qbuf"`
	// Anycatch is the block anycatch's own export adds (see [ExportMeta]);
	// nil in files from Atlas.
	Anycatch *rawMeta `json:"anycatch"`
	// ping summary
	Sent num `json:"sent"`
	Rcvd num `json:"rcvd"`
	Dup  num `json:"dup"`
	Min  num `json:"min"`
	Avg  num `json:"avg"`
	Max  num `json:"max"`
	TTL  num `json:"ttl"`
}

// rawMeta is what the importer takes back from an anycatch export's
// "anycatch" block, so that export -> import -> export gives the same
// bytes: the result id (Atlas resultset elements were exported as results
// of their own, which would otherwise get a new id), the error text as
// stored, and whether a resultset was one result with several exchanges.
// Probe and measurement stay those of prb_id and msm_id: imports live in
// the "atlas:" namespace.
type rawMeta struct {
	V     int          `json:"v"`
	ID    measure.UUID `json:"id"`
	Kind  measure.Kind `json:"kind"`
	Error string       `json:"error"`
}

// rawSub is one element of a dns "resultset".
type rawSub struct {
	AF      num             `json:"af"`
	DstAddr string          `json:"dst_addr"`
	DstName string          `json:"dst_name"`
	SrcAddr string          `json:"src_addr"`
	Proto   string          `json:"proto"`
	Time    num             `json:"time"`
	LTS     num             `json:"lts"`
	Error   json.RawMessage `json:"error"`
	Result  json.RawMessage `json:"result"`
	Qbuf    string          `json:"qbuf"`
}

// ParseResult converts one Atlas result object into one result, or one per
// element of its "resultset". Unsupported types and malformed objects are
// errors; failures the probe reported (timeouts, socket errors) are
// results.
func ParseResult(data []byte) ([]Parsed, error) {
	var raw rawResult
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, decodeError(data, err)
	}
	if !raw.PrbID.ok || !raw.MsmID.ok || !raw.Timestamp.ok {
		return nil, errors.New("missing prb_id, msm_id or timestamp")
	}
	if raw.Timestamp.v <= 0 || raw.Timestamp.v > 1<<40 {
		return nil, fmt.Errorf("timestamp %v out of range", raw.Timestamp.v)
	}
	meta := Meta{
		ProbeID: raw.PrbID.int(), MsmID: raw.MsmID.int(), GroupID: raw.GroupID.int(), Type: raw.Type,
		From: raw.From, FW: raw.FW.int(), Timestamp: int64(raw.Timestamp.v), Sub: -1,
	}
	if raw.LTS.ok {
		l := raw.LTS.int()
		meta.LTS = &l
	}
	base := func(kind measure.Kind, ts float64, dst string, af num, src string, sub int) (*measure.Result, error) {
		r := &measure.Result{
			V:           measure.Version,
			Probe:       ProbeName(meta.ProbeID),
			Measurement: MeasurementName(meta.MsmID),
			Kind:        kind,
			Time:        unixTime(ts),
			Src:         src,
		}
		a, err := netip.ParseAddr(dst)
		if err != nil {
			return nil, fmt.Errorf("no destination address (dst_addr %q)", dst)
		}
		r.Dst = a.String()
		r.AF = af.int()
		if r.AF != 4 && r.AF != 6 {
			r.AF = 6
			if a.Unmap().Is4() {
				r.AF = 4
			}
		}
		r.ID = resultID(r.Time, meta.MsmID, meta.ProbeID, meta.Timestamp, sub)
		return r, nil
	}
	out, err := parseBody(&raw, meta, base)
	if err != nil || raw.Anycatch == nil || raw.Anycatch.V < 1 {
		return out, err
	}
	return applyOwnMeta(out, &raw)
}

// applyOwnMeta takes back what an anycatch export's own block says about
// the result (see rawMeta). A block that does not fit the Atlas fields
// (an id whose time is not the result's) is an error: the file was
// edited or is not ours.
func applyOwnMeta(out []Parsed, raw *rawResult) ([]Parsed, error) {
	m := raw.Anycatch
	if len(out) == 0 {
		return out, nil
	}
	r := out[0].Result
	if len(out) > 1 && len(out) == len(raw.Resultset) {
		// FromResult writes a result with several exchanges as a
		// resultset; it was one result. An element whose exchange failed
		// without a reply was parsed as "could not measure": it is an
		// exchange error here.
		d := &measure.DNSResult{Server: joinHostPort(r.Dst, "53")}
		for i, p := range out {
			switch {
			case p.Result.DNS != nil:
				d.Exchanges = append(d.Exchanges, p.Result.DNS.Exchanges...)
				d.Identity = mergeIdentity(d.Identity, p.Result.DNS.Identity)
			case p.Result.Error != "":
				ex := measure.DNSExchange{Proto: strings.ToLower(raw.Resultset[i].Proto), Error: p.Result.Error}
				if q := decodeQuestion(raw.Resultset[i].Qbuf); q != nil {
					ex.QName, ex.QClass, ex.QType = q.Name, dns.ClassToString[q.Qclass], dns.TypeToString[q.Qtype]
				}
				d.Exchanges = append(d.Exchanges, ex)
			default:
				return nil, fmt.Errorf("anycatch: resultset[%d] has neither a dns result nor an error", i)
			}
		}
		r.DNS, r.Error = d, ""
		out = out[:1]
		out[0].Meta.Sub = -1
	}
	if !m.ID.IsZero() {
		if m.ID.Version() != 7 || m.ID.Time().Unix() != r.Time.Unix() {
			return nil, fmt.Errorf("anycatch: id %s does not match timestamp %d", m.ID, r.Time.Unix())
		}
		r.ID = m.ID
	}
	if m.Kind == measure.KindIdentity && r.Kind == measure.KindDNS {
		r.Kind = m.Kind
	}
	if r.Error != "" && m.Error != "" {
		r.Error = truncate(m.Error, 1024)
	}
	return out, nil
}

// mergeIdentity fills a's empty identity strings from b.
func mergeIdentity(a, b *measure.Identity) *measure.Identity {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	m := *a
	if m.HostnameBind == "" {
		m.HostnameBind = b.HostnameBind
	}
	if m.IDServer == "" {
		m.IDServer = b.IDServer
	}
	if m.NSID == "" {
		m.NSID = b.NSID
	}
	return &m
}

// parseBody converts the type-specific part of raw.
func parseBody(raw *rawResult, meta Meta, base func(kind measure.Kind, ts float64, dst string, af num, src string, sub int) (*measure.Result, error)) ([]Parsed, error) {
	dst := firstAddr(raw.DstAddr, raw.DstName, raw.Addr)
	switch raw.Type {
	case "dns":
		if raw.Resultset != nil {
			out := make([]Parsed, 0, len(raw.Resultset))
			for i, s := range raw.Resultset {
				m := meta
				m.Sub = i
				if s.LTS.ok {
					l := s.LTS.int()
					m.LTS = &l
				}
				ts := raw.Timestamp.v
				if s.Time.ok {
					ts = s.Time.v
				}
				r, err := base(measure.KindDNS, ts, firstAddr(s.DstAddr, s.DstName), s.AF, s.SrcAddr, i)
				if err != nil {
					return nil, fmt.Errorf("resultset[%d]: %w", i, err)
				}
				if err := fillDNS(r, s.Proto, s.Error, s.Result, s.Qbuf); err != nil {
					return nil, fmt.Errorf("resultset[%d]: %w", i, err)
				}
				out = append(out, Parsed{r, m})
			}
			return out, nil
		}
		r, err := base(measure.KindDNS, raw.Timestamp.v, dst, raw.AF, raw.SrcAddr, 0)
		if err != nil {
			return nil, err
		}
		if err := fillDNS(r, raw.Proto, raw.Error, raw.Result, raw.Qbuf); err != nil {
			return nil, err
		}
		return []Parsed{{r, meta}}, nil
	case "ping":
		r, err := base(measure.KindPing, raw.Timestamp.v, dst, raw.AF, raw.SrcAddr, 0)
		if err != nil {
			return nil, err
		}
		if err := fillPing(r, raw); err != nil {
			return nil, err
		}
		return []Parsed{{r, meta}}, nil
	case "traceroute":
		r, err := base(measure.KindTrace, raw.Timestamp.v, dst, raw.AF, raw.SrcAddr, 0)
		if err != nil {
			return nil, err
		}
		if err := fillTrace(r, raw); err != nil {
			return nil, err
		}
		return []Parsed{{r, meta}}, nil
	case "":
		return nil, errors.New("missing type")
	}
	return nil, fmt.Errorf("unsupported result type %q", raw.Type)
}

func firstAddr(cands ...string) string {
	for _, c := range cands {
		if _, err := netip.ParseAddr(c); err == nil {
			return c
		}
	}
	for _, c := range cands {
		if c != "" {
			return c
		}
	}
	return ""
}

func unixTime(s float64) time.Time {
	sec, frac := math.Modf(s)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// resultID is the deterministic UUIDv7 of an imported result: the
// millisecond timestamp of t, version and variant bits, and 74 bits of
// SHA-256 over (msm_id, prb_id, Atlas timestamp, resultset index).
func resultID(t time.Time, msm, prb int, ts int64, sub int) measure.UUID {
	var buf [32]byte
	binary.BigEndian.PutUint64(buf[0:], uint64(msm))
	binary.BigEndian.PutUint64(buf[8:], uint64(prb))
	binary.BigEndian.PutUint64(buf[16:], uint64(ts))
	binary.BigEndian.PutUint64(buf[24:], uint64(int64(sub)))
	h := sha256.Sum256(append([]byte("anycatch/atlas\x00"), buf[:]...))
	var u measure.UUID
	ms := t.UnixMilli()
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	copy(u[6:], h[:10])
	u[6] = 0x70 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return u
}

// atlasError interprets an Atlas "error" value: {"timeout": ms} is a
// timeout (a result), anything else ({"socket": "..."},
// {"getaddrinfo": "..."}, a bare string) means the probe could not
// measure.
func atlasError(raw json.RawMessage) (timeout bool, msg string) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return false, s
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return false, string(raw)
	}
	if _, ok := m["timeout"]; ok {
		return true, ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %v", k, m[k]))
	}
	if len(parts) == 0 {
		return false, "error"
	}
	return false, strings.Join(parts, "; ")
}

// isNull reports whether a JSON value is absent or null.
func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

type rawPingReply struct {
	RTT   num             `json:"rtt"`
	TTL   num             `json:"ttl"`
	Dup   num             `json:"dup"`
	X     string          `json:"x"`
	Error json.RawMessage `json:"error"`
}

func fillPing(r *measure.Result, raw *rawResult) error {
	p := &measure.PingResult{
		Size:       raw.Size.int(),
		Sent:       raw.Sent.int(),
		Received:   raw.Rcvd.int(),
		Duplicates: raw.Dup.int(),
		Min:        raw.Min.ptr(),
		Avg:        raw.Avg.ptr(),
		Max:        raw.Max.ptr(),
	}
	if _, msg := atlasError(raw.Error); msg != "" {
		r.Error = truncate(msg, 1024)
		if isNull(raw.Result) && !raw.Sent.ok {
			return nil // could not measure at all: no ping payload
		}
	}
	var replies []rawPingReply
	if len(raw.Result) > 0 && string(raw.Result) != "null" {
		if err := json.Unmarshal(raw.Result, &replies); err != nil {
			return fmt.Errorf("ping result: %w", err)
		}
	}
	var uniq []float64
	for i, rp := range replies {
		if rp.X != "" || !rp.RTT.ok {
			continue // "x": "*" is a timeout; {"error": …} a send failure
		}
		dup := rp.Dup.ok && rp.Dup.v != 0
		p.Replies = append(p.Replies, measure.PingReply{Seq: i, RTT: rp.RTT.v, TTL: rp.TTL.int(), Dup: dup})
		if !dup {
			uniq = append(uniq, rp.RTT.v)
		}
	}
	if len(uniq) > 0 {
		slices.Sort(uniq)
		m := uniq[len(uniq)/2]
		if len(uniq)%2 == 0 {
			m = (uniq[len(uniq)/2-1] + uniq[len(uniq)/2]) / 2
		}
		p.Median = &m
	}
	if p.Received == 0 {
		p.Min, p.Avg, p.Max = nil, nil, nil
	}
	r.Ping = p
	return nil
}

type rawHop struct {
	Hop    num           `json:"hop"`
	Error  string        `json:"error"`
	Result []rawHopReply `json:"result"`
}

type rawHopReply struct {
	From    string          `json:"from"`
	RTT     num             `json:"rtt"`
	TTL     num             `json:"ttl"`
	X       string          `json:"x"`
	Late    num             `json:"late"`
	Err     json.RawMessage `json:"err"`
	ICMPExt *rawICMPExt     `json:"icmpext"`
}

type rawICMPExt struct {
	Obj []struct {
		Class num `json:"class"`
		Type  num `json:"type"`
		MPLS  []struct {
			Label num `json:"label"`
			Exp   num `json:"exp"`
			S     num `json:"s"`
			TTL   num `json:"ttl"`
		} `json:"mpls"`
	} `json:"obj"`
}

func fillTrace(r *measure.Result, raw *rawResult) error {
	t := &measure.TraceResult{Proto: strings.ToLower(raw.Proto)}
	if raw.ParisID.ok && raw.ParisID.v > 0 {
		t.Paris = true
		t.FlowID = uint16(raw.ParisID.v)
	}
	if raw.Endtime.ok && raw.Endtime.v >= raw.Timestamp.v {
		r.DurationMS = (raw.Endtime.v - raw.Timestamp.v) * 1000
	}
	if _, msg := atlasError(raw.Error); msg != "" {
		r.Error = truncate(msg, 1024)
		if isNull(raw.Result) {
			return nil // could not measure at all: no traceroute payload
		}
	}
	var hops []rawHop
	if len(raw.Result) > 0 && string(raw.Result) != "null" {
		if err := json.Unmarshal(raw.Result, &hops); err != nil {
			return fmt.Errorf("traceroute result: %w", err)
		}
	}
	for _, h := range hops {
		ttl := h.Hop.int()
		if ttl < 1 || ttl > 255 {
			return fmt.Errorf("traceroute: hop %v out of range", h.Hop.v)
		}
		if h.Error != "" && r.Error == "" {
			r.Error = truncate(fmt.Sprintf("hop %d: %s", ttl, h.Error), 1024)
		}
		if len(h.Result) == 0 {
			continue
		}
		hop := measure.Hop{TTL: ttl}
		for _, hr := range h.Result {
			hp := measure.HopProbe{From: hr.From, ReplyTTL: hr.TTL.int()}
			switch {
			case hr.X != "":
				hp = measure.HopProbe{Timeout: true}
			case hr.Late.ok && hr.Late.v > 0:
				hp.Late = true
			default:
				hp.RTT = hr.RTT.v
			}
			if len(hr.Err) > 0 {
				hp.ICMPType, hp.ICMPCode = icmpFromErr(hr.Err, r.AF)
			}
			if hr.ICMPExt != nil {
				for _, o := range hr.ICMPExt.Obj {
					if o.Class.int() != 1 || o.Type.int() != 1 { // RFC 4950 MPLS label stack
						continue
					}
					for _, l := range o.MPLS {
						hp.MPLS = append(hp.MPLS, measure.MPLSLabel{Label: uint32(l.Label.v), TC: uint8(l.Exp.v), S: l.S.v != 0, TTL: uint8(l.TTL.v)})
					}
				}
			}
			hop.Probes = append(hop.Probes, hp)
			if !hp.Timeout && !hp.Late && hp.From != "" && sameAddr(hp.From, r.Dst) {
				t.Reached = true
			}
		}
		t.Hops = append(t.Hops, hop)
	}
	for i, h := range t.Hops {
		if i == 0 || h.TTL < t.FirstHop {
			t.FirstHop = h.TTL
		}
		if h.TTL > t.MaxHops {
			t.MaxHops = h.TTL
		}
	}
	r.Trace = t
	return nil
}

func sameAddr(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	return err1 == nil && err2 == nil && x.Unmap() == y.Unmap()
}

// Atlas traceroute "err" letters (ICMP destination unreachable codes).
var errCodes4 = map[string]int{"N": 0, "H": 1, "P": 2, "p": 3, "A": 13}
var errCodes6 = map[string]int{"N": 0, "A": 1, "h": 2, "H": 3, "p": 4}

// icmpFromErr maps an Atlas "err" (a letter or a numeric code) to the ICMP
// destination-unreachable type and code of the address family.
func icmpFromErr(raw json.RawMessage, af int) (typ, code int) {
	typ, codes := 3, errCodes4
	if af == 6 {
		typ, codes = 1, errCodes6
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if c, ok := codes[s]; ok {
			return typ, c
		}
		if af == 6 && s == "P" { // no IPv6 unreachable code: parameter problem, unrecognized next header
			return 4, 1
		}
		if n, err := strconv.Atoi(s); err == nil {
			return typ, n
		}
		return typ, 0
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return typ, int(n)
	}
	return typ, 0
}
