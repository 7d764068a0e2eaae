package measure

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendResult appends the wire JSON of r to b: byte for byte what
// encoding/json.Marshal(r) gives, and the same error when it fails (a NaN
// or infinite number, a year outside 0..9999), without reflection.
func AppendResult(b []byte, r *Result) ([]byte, error) {
	return appendResult(b, r, true)
}

// AppendResultWithoutRaw is [AppendResult] with every DNS exchange's raw
// reply (abuf) left out, for storage that keeps the replies apart.
func AppendResultWithoutRaw(b []byte, r *Result) ([]byte, error) {
	return appendResult(b, r, false)
}

func appendResult(b []byte, r *Result, raw bool) ([]byte, error) {
	e := encoder{b: b}
	e.result(r, raw)
	if !e.bad {
		return e.b, nil
	}
	// Let encoding/json say what is wrong, in its words.
	c := *r
	if !raw && r.DNS != nil {
		d := *r.DNS
		d.Exchanges = make([]DNSExchange, len(r.DNS.Exchanges))
		copy(d.Exchanges, r.DNS.Exchanges)
		for i := range d.Exchanges {
			d.Exchanges[i].Raw = nil
		}
		c.DNS = &d
	}
	j, err := json.Marshal(&c)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// encoder writes the wire form; bad is set by a value encoding/json
// refuses.
type encoder struct {
	b   []byte
	bad bool
}

// key appends a field name given quoted and with its colon, with the
// comma before every field but the first of its object; names are tag
// names and need no escaping.
func (e *encoder) key(first *bool, quoted string) {
	if *first {
		*first = false
	} else {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, quoted...)
}

func (e *encoder) int(n int) { e.b = strconv.AppendInt(e.b, int64(n), 10) }

func (e *encoder) uint(n uint64) { e.b = strconv.AppendUint(e.b, n, 10) }

func (e *encoder) bool(v bool) { e.b = strconv.AppendBool(e.b, v) }

// float writes f as encoding/json does (ES6 number formatting).
func (e *encoder) float(f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		e.bad = true
		return
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	e.b = strconv.AppendFloat(e.b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		n := len(e.b)
		if n >= 4 && e.b[n-4] == 'e' && e.b[n-3] == '-' && e.b[n-2] == '0' {
			e.b[n-2] = e.b[n-1]
			e.b = e.b[:n-1]
		}
	}
}

// htmlSafe marks the ASCII bytes encoding/json.Marshal writes as they
// are (it escapes control characters, quote, backslash and <, >, &).
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string exactly as encoding/json.Marshal does.
func (e *encoder) str(s string) {
	b := append(e.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	e.b = append(b, '"')
}

// uuid writes u in its canonical form, quoted.
func (e *encoder) uuid(u UUID) {
	b := append(e.b, '"')
	b = hex.AppendEncode(b, u[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[8:10])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[10:16])
	e.b = append(b, '"')
}

func (e *encoder) strings(ss []string) {
	if ss == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '[')
	for i, s := range ss {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.str(s)
	}
	e.b = append(e.b, ']')
}

func (e *encoder) result(r *Result, raw bool) {
	first := true
	e.b = append(e.b, '{')
	e.key(&first, `"v":`)
	e.int(r.V)
	e.key(&first, `"id":`)
	e.uuid(r.ID)
	if r.Probe != "" {
		e.key(&first, `"probe":`)
		e.str(r.Probe)
	}
	e.key(&first, `"msm":`)
	e.str(r.Measurement)
	if r.Target != "" {
		e.key(&first, `"target":`)
		e.str(r.Target)
	}
	e.key(&first, `"kind":`)
	e.str(string(r.Kind))
	e.key(&first, `"ts":`)
	e.b = append(e.b, '"')
	var err error
	if e.b, err = r.Time.AppendText(e.b); err != nil {
		e.bad = true
	}
	e.b = append(e.b, '"')
	e.key(&first, `"dst":`)
	e.str(r.Dst)
	if r.Src != "" {
		e.key(&first, `"src":`)
		e.str(r.Src)
	}
	e.key(&first, `"af":`)
	e.int(r.AF)
	if r.DurationMS != 0 {
		e.key(&first, `"duration_ms":`)
		e.float(r.DurationMS)
	}
	if r.Error != "" {
		e.key(&first, `"error":`)
		e.str(r.Error)
	}
	if r.Ping != nil {
		e.key(&first, `"ping":`)
		e.ping(r.Ping)
	}
	if r.Trace != nil {
		e.key(&first, `"trace":`)
		e.trace(r.Trace)
	}
	if r.DNS != nil {
		e.key(&first, `"dns":`)
		e.dns(r.DNS, raw)
	}
	if r.HTTP != nil {
		e.key(&first, `"http":`)
		e.http(r.HTTP)
	}
	if r.NTP != nil {
		e.key(&first, `"ntp":`)
		e.ntp(r.NTP)
	}
	e.b = append(e.b, '}')
}

func (e *encoder) ping(p *PingResult) {
	first := true
	e.b = append(e.b, '{')
	e.key(&first, `"mode":`)
	e.str(p.Mode)
	e.key(&first, `"size":`)
	e.int(p.Size)
	e.key(&first, `"sent":`)
	e.int(p.Sent)
	e.key(&first, `"received":`)
	e.int(p.Received)
	if p.Duplicates != 0 {
		e.key(&first, `"dups":`)
		e.int(p.Duplicates)
	}
	for _, f := range [...]struct {
		name string
		v    *float64
	}{{`"min":`, p.Min}, {`"avg":`, p.Avg}, {`"median":`, p.Median}, {`"max":`, p.Max}} {
		if f.v != nil {
			e.key(&first, f.name)
			e.float(*f.v)
		}
	}
	if len(p.Replies) > 0 {
		e.key(&first, `"replies":`)
		e.b = append(e.b, '[')
		for i := range p.Replies {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			rp := &p.Replies[i]
			first := true
			e.b = append(e.b, '{')
			e.key(&first, `"seq":`)
			e.int(rp.Seq)
			e.key(&first, `"rtt":`)
			e.float(rp.RTT)
			if rp.TTL != 0 {
				e.key(&first, `"ttl":`)
				e.int(rp.TTL)
			}
			if rp.Dup {
				e.key(&first, `"dup":`)
				e.bool(true)
			}
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, '}')
}

func (e *encoder) trace(t *TraceResult) {
	first := true
	e.b = append(e.b, '{')
	e.key(&first, `"proto":`)
	e.str(t.Proto)
	e.key(&first, `"mode":`)
	e.str(t.Mode)
	e.key(&first, `"paris":`)
	e.bool(t.Paris)
	if t.FlowID != 0 {
		e.key(&first, `"flow_id":`)
		e.uint(uint64(t.FlowID))
	}
	if t.SrcPort != 0 {
		e.key(&first, `"sport":`)
		e.int(t.SrcPort)
	}
	if t.DstPort != 0 {
		e.key(&first, `"dport":`)
		e.int(t.DstPort)
	}
	e.key(&first, `"first_hop":`)
	e.int(t.FirstHop)
	e.key(&first, `"max_hops":`)
	e.int(t.MaxHops)
	e.key(&first, `"reached":`)
	e.bool(t.Reached)
	if t.DestTTLInferred {
		e.key(&first, `"dest_ttl_inferred":`)
		e.bool(true)
	}
	e.key(&first, `"hops":`)
	if t.Hops == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i := range t.Hops {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.hop(&t.Hops[i])
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, '}')
}

func (e *encoder) hop(h *Hop) {
	first := true
	e.b = append(e.b, '{')
	e.key(&first, `"ttl":`)
	e.int(h.TTL)
	e.key(&first, `"probes":`)
	if h.Probes == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i := range h.Probes {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.hopProbe(&h.Probes[i])
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, '}')
}

func (e *encoder) hopProbe(p *HopProbe) {
	first := true
	e.b = append(e.b, '{')
	if p.From != "" {
		e.key(&first, `"from":`)
		e.str(p.From)
	}
	if p.RTT != 0 {
		e.key(&first, `"rtt":`)
		e.float(p.RTT)
	}
	if p.ReplyTTL != 0 {
		e.key(&first, `"reply_ttl":`)
		e.int(p.ReplyTTL)
	}
	if p.ICMPType != 0 {
		e.key(&first, `"icmp_type":`)
		e.int(p.ICMPType)
	}
	if p.ICMPCode != 0 {
		e.key(&first, `"icmp_code":`)
		e.int(p.ICMPCode)
	}
	if len(p.MPLS) > 0 {
		e.key(&first, `"mpls":`)
		e.b = append(e.b, '[')
		for i, l := range p.MPLS {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			first := true
			e.b = append(e.b, '{')
			e.key(&first, `"label":`)
			e.uint(uint64(l.Label))
			e.key(&first, `"tc":`)
			e.uint(uint64(l.TC))
			e.key(&first, `"s":`)
			e.bool(l.S)
			e.key(&first, `"ttl":`)
			e.uint(uint64(l.TTL))
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	if p.Late {
		e.key(&first, `"late":`)
		e.bool(true)
	}
	if p.Timeout {
		e.key(&first, `"timeout":`)
		e.bool(true)
	}
	e.b = append(e.b, '}')
}

func (e *encoder) dns(d *DNSResult, raw bool) {
	first := true
	e.b = append(e.b, '{')
	e.key(&first, `"server":`)
	e.str(d.Server)
	e.key(&first, `"exchanges":`)
	if d.Exchanges == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i := range d.Exchanges {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.exchange(&d.Exchanges[i], raw)
		}
		e.b = append(e.b, ']')
	}
	if id := d.Identity; id != nil {
		e.key(&first, `"identity":`)
		first := true
		e.b = append(e.b, '{')
		if id.HostnameBind != "" {
			e.key(&first, `"hostname_bind":`)
			e.str(id.HostnameBind)
		}
		if id.IDServer != "" {
			e.key(&first, `"id_server":`)
			e.str(id.IDServer)
		}
		if id.NSID != "" {
			e.key(&first, `"nsid":`)
			e.str(id.NSID)
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
}

func (e *encoder) exchange(x *DNSExchange, raw bool) {
	first := true
	e.b = append(e.b, '{')
	e.key(&first, `"qname":`)
	e.str(x.QName)
	e.key(&first, `"qclass":`)
	e.str(x.QClass)
	e.key(&first, `"qtype":`)
	e.str(x.QType)
	e.key(&first, `"proto":`)
	e.str(x.Proto)
	if x.TCPFallback {
		e.key(&first, `"tcp_fallback":`)
		e.bool(true)
	}
	if x.Tries != 0 {
		e.key(&first, `"tries":`)
		e.int(x.Tries)
	}
	if x.RTT != 0 {
		e.key(&first, `"rtt":`)
		e.float(x.RTT)
	}
	if x.Rcode != "" {
		e.key(&first, `"rcode":`)
		e.str(x.Rcode)
	}
	if len(x.Flags) > 0 {
		e.key(&first, `"flags":`)
		e.strings(x.Flags)
	}
	if len(x.Answers) > 0 {
		e.key(&first, `"answers":`)
		e.b = append(e.b, '[')
		for i := range x.Answers {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			a := &x.Answers[i]
			first := true
			e.b = append(e.b, '{')
			e.key(&first, `"name":`)
			e.str(a.Name)
			e.key(&first, `"type":`)
			e.str(a.Type)
			e.key(&first, `"class":`)
			e.str(a.Class)
			e.key(&first, `"ttl":`)
			e.uint(uint64(a.TTL))
			e.key(&first, `"data":`)
			e.str(a.Data)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	if x.NSID != "" {
		e.key(&first, `"nsid":`)
		e.str(x.NSID)
	}
	if x.NSIDHex != "" {
		e.key(&first, `"nsid_hex":`)
		e.str(x.NSIDHex)
	}
	if raw && len(x.Raw) > 0 {
		e.key(&first, `"abuf":`)
		e.b = append(e.b, '"')
		e.b = base64.StdEncoding.AppendEncode(e.b, x.Raw)
		e.b = append(e.b, '"')
	}
	if x.Error != "" {
		e.key(&first, `"error":`)
		e.str(x.Error)
	}
	e.b = append(e.b, '}')
}
