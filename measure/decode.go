package measure

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// UnmarshalResult decodes one result in the wire format into r, replacing
// whatever r held. It gives exactly what encoding/json.Unmarshal into a
// zero Result gives, the same result or the same error, at a fraction of
// the cost: a hand-written parser reads the form encoding/json.Marshal and
// [AppendResult] write (field names as tagged, each at most once, plain
// values), and anything else (unknown, repeated or escaped keys, nulls
// where no pointer or slice is, invalid UTF-8, malformed JSON) is handed
// to encoding/json itself, which decides.
//
// Strings in r share one copy of b, so holding any of them holds it all.
func UnmarshalResult(b []byte, r *Result) error {
	if unmarshalFast(b, r) {
		return nil
	}
	*r = Result{}
	return json.Unmarshal(b, r)
}

// unmarshalFast decodes b into r with the hand-written parser and reports
// whether it could; when not, r holds garbage.
func unmarshalFast(b []byte, r *Result) bool {
	d := decoder{s: string(b), b: b}
	*r = Result{}
	d.result(r)
	d.ws()
	return !d.bad && d.i == len(d.s)
}

// decoder parses the canonical wire form. The first thing it does not
// handle sets bad and moves the cursor to the end, so every later read
// fails at once and every loop ends.
type decoder struct {
	s   string // the input, copied once: unescaped strings are substrings
	b   []byte // the same input, for the few readers that take bytes
	i   int
	bad bool
}

func (d *decoder) fail() {
	d.bad = true
	d.i = len(d.s)
}

func (d *decoder) ws() {
	// Compact input has none: one comparison says so.
	for d.i < len(d.s) && d.s[d.i] <= ' ' {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

// once fails on the second sight of a key: encoding/json merges repeated
// keys in ways not worth copying.
func (d *decoder) once(seen *uint32, bit uint) {
	if *seen&(1<<bit) != 0 {
		d.fail()
	}
	*seen |= 1 << bit
}

// field steps to the next key of the object at the cursor: on the first
// call (*n == 0) past its '{', later past the ',' after the previous
// value. It returns the key, cursor on the value, or false at the end of
// the object or on failure.
func (d *decoder) field(n *int) (string, bool) {
	d.ws()
	if *n == 0 {
		if d.peek() != '{' {
			d.fail()
			return "", false
		}
		d.i++
		d.ws()
		if d.peek() == '}' {
			d.i++
			return "", false
		}
	} else {
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			return "", false
		default:
			d.fail()
			return "", false
		}
	}
	*n++
	start, end, plain := d.strSpan()
	if !plain {
		d.fail() // escaped keys may match fields case-insensitively
		return "", false
	}
	d.ws()
	if d.peek() != ':' {
		d.fail()
		return "", false
	}
	d.i++
	d.ws()
	return d.s[start:end], true
}

// elem steps to the next element of the array at the cursor, like field.
func (d *decoder) elem(n *int) bool {
	d.ws()
	if *n == 0 {
		if d.peek() != '[' {
			d.fail()
			return false
		}
		d.i++
		d.ws()
		if d.peek() == ']' {
			d.i++
			return false
		}
	} else {
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
		case ']':
			d.i++
			return false
		default:
			d.fail()
			return false
		}
	}
	*n++
	return true
}

// null consumes a null literal at the cursor and reports whether there
// was one.
func (d *decoder) null() bool {
	if len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "null" {
		d.i += 4
		return true
	}
	return false
}

// strSpan reads the string at the cursor and returns the bounds of its
// contents; plain is false when they hold escapes or non-ASCII bytes (and
// on failure, which sets bad).
func (d *decoder) strSpan() (start, end int, plain bool) {
	if d.peek() != '"' {
		d.fail()
		return 0, 0, false
	}
	d.i++
	start = d.i
	i, s := d.i, d.s
	for i < len(s) && plainByte[s[i]] {
		i++
	}
	if i < len(s) && s[i] == '"' {
		d.i = i + 1
		return start, i, true
	}
	d.i = i
	plain = true
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return start, d.i - 1, plain
		case c < 0x20:
			d.fail()
			return 0, 0, false
		case c == '\\':
			plain = false
			d.i++
			if d.i < len(d.s) && d.s[d.i] == 'u' {
				d.i += 4 // the digits are checked when unescaping
			}
			d.i++
		case c >= utf8.RuneSelf:
			plain = false
			d.i++
		default:
			d.i++
		}
	}
	d.fail()
	return 0, 0, false
}

// plainByte marks the bytes a string holds as they are: printable ASCII
// but quote and backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (d *decoder) str() string {
	start, end, plain := d.strSpan()
	if plain || d.bad {
		return d.s[start:end]
	}
	return d.unescape(d.s[start:end])
}

// unescape decodes the contents of a string with escapes or non-ASCII
// bytes as encoding/json does. Invalid UTF-8, which encoding/json
// replaces, fails instead.
func (d *decoder) unescape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				d.fail()
				return ""
			}
			out = append(out, s[i:i+size]...)
			i += size
			continue
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			d.fail()
			return ""
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(s[i+2:])
			if r < 0 {
				d.fail()
				return ""
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(s)-i >= 6 && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			d.fail()
			return ""
		}
		i += 2
	}
	return string(out)
}

// hex4 returns the value of the four hex digits s starts with, or -1.
func hex4(s string) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number reads a JSON number at the cursor and returns its text and
// whether it is an integer (no fraction, no exponent).
func (d *decoder) number() (string, bool) {
	start := d.i
	s := d.s
	i := d.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		d.fail()
		return "", false
	}
	integer := true
	if i < len(s) && s[i] == '.' {
		integer = false
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.fail()
			return "", false
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integer = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.fail()
			return "", false
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	return s[start:i], integer
}

func (d *decoder) int() int {
	t, integer := d.number()
	if !integer {
		d.fail()
		return 0
	}
	n, err := strconv.ParseInt(t, 10, strconv.IntSize)
	if err != nil {
		d.fail()
	}
	return int(n)
}

func (d *decoder) uint(bits int) uint64 {
	t, integer := d.number()
	if !integer {
		d.fail()
		return 0
	}
	n, err := strconv.ParseUint(t, 10, bits)
	if err != nil {
		d.fail()
	}
	return n
}

func (d *decoder) float() float64 {
	t, _ := d.number()
	if d.bad {
		return 0
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		d.fail()
	}
	return f
}

// floatPtr reads a number or null (nil).
func (d *decoder) floatPtr() *float64 {
	if d.null() {
		return nil
	}
	f := d.float()
	return &f
}

func (d *decoder) bool() bool {
	switch {
	case len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "true":
		d.i += 4
		return true
	case len(d.s)-d.i >= 5 && d.s[d.i:d.i+5] == "false":
		d.i += 5
		return false
	}
	d.fail()
	return false
}

// bytes reads a base64 string (or null: nil) as encoding/json does for a
// []byte.
func (d *decoder) bytes() []byte {
	if d.null() {
		return nil
	}
	start, end, plain := d.strSpan()
	if !plain {
		d.fail()
		return nil
	}
	src := d.b[start:end]
	out := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(out, src)
	if err != nil {
		d.fail()
		return nil
	}
	return out[:n]
}

func (d *decoder) strings() []string {
	if d.null() {
		return nil
	}
	out := make([]string, 0, 4)
	for n := 0; d.elem(&n); {
		out = append(out, d.str())
	}
	return out
}

func (d *decoder) result(r *Result) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "v":
			d.once(&seen, 0)
			r.V = d.int()
		case "id":
			d.once(&seen, 1)
			start, end, plain := d.strSpan()
			if !plain {
				d.fail()
				continue
			}
			id, err := ParseUUID(d.s[start:end])
			if err != nil {
				d.fail()
			}
			r.ID = id
		case "probe":
			d.once(&seen, 2)
			r.Probe = d.str()
		case "msm":
			d.once(&seen, 3)
			r.Measurement = d.str()
		case "target":
			d.once(&seen, 4)
			r.Target = d.str()
		case "kind":
			d.once(&seen, 5)
			r.Kind = Kind(d.str())
		case "ts":
			d.once(&seen, 6)
			// encoding/json hands Time the raw token; so do we.
			start := d.i
			if _, _, plain := d.strSpan(); !plain {
				d.fail()
				continue
			}
			if err := r.Time.UnmarshalJSON(d.b[start:d.i]); err != nil {
				d.fail()
			}
		case "dst":
			d.once(&seen, 7)
			r.Dst = d.str()
		case "src":
			d.once(&seen, 8)
			r.Src = d.str()
		case "af":
			d.once(&seen, 9)
			r.AF = d.int()
		case "duration_ms":
			d.once(&seen, 10)
			r.DurationMS = d.float()
		case "error":
			d.once(&seen, 11)
			r.Error = d.str()
		case "ping":
			d.once(&seen, 12)
			if !d.null() {
				r.Ping = new(PingResult)
				d.ping(r.Ping)
			}
		case "trace":
			d.once(&seen, 13)
			if !d.null() {
				r.Trace = new(TraceResult)
				d.trace(r.Trace)
			}
		case "dns":
			d.once(&seen, 14)
			if !d.null() {
				r.DNS = new(DNSResult)
				d.dns(r.DNS)
			}
		case "http":
			d.once(&seen, 15)
			if !d.null() {
				r.HTTP = new(HTTPResult)
				d.http(r.HTTP)
			}
		case "ntp":
			d.once(&seen, 16)
			if !d.null() {
				r.NTP = new(NTPResult)
				d.ntp(r.NTP)
			}
		default:
			d.fail()
		}
	}
}

func (d *decoder) ping(p *PingResult) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "mode":
			d.once(&seen, 0)
			p.Mode = d.str()
		case "size":
			d.once(&seen, 1)
			p.Size = d.int()
		case "sent":
			d.once(&seen, 2)
			p.Sent = d.int()
		case "received":
			d.once(&seen, 3)
			p.Received = d.int()
		case "dups":
			d.once(&seen, 4)
			p.Duplicates = d.int()
		case "min":
			d.once(&seen, 5)
			p.Min = d.floatPtr()
		case "avg":
			d.once(&seen, 6)
			p.Avg = d.floatPtr()
		case "median":
			d.once(&seen, 7)
			p.Median = d.floatPtr()
		case "max":
			d.once(&seen, 8)
			p.Max = d.floatPtr()
		case "replies":
			d.once(&seen, 9)
			if d.null() {
				continue
			}
			hint := p.Sent + p.Duplicates // sent comes first on the wire
			if hint < 1 || hint > MaxPingReplies {
				hint = 4
			}
			p.Replies = make([]PingReply, 0, hint)
			for n := 0; d.elem(&n); {
				p.Replies = append(p.Replies, PingReply{})
				d.pingReply(&p.Replies[len(p.Replies)-1])
			}
		default:
			d.fail()
		}
	}
}

func (d *decoder) pingReply(p *PingReply) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "seq":
			d.once(&seen, 0)
			p.Seq = d.int()
		case "rtt":
			d.once(&seen, 1)
			p.RTT = d.float()
		case "ttl":
			d.once(&seen, 2)
			p.TTL = d.int()
		case "dup":
			d.once(&seen, 3)
			p.Dup = d.bool()
		default:
			d.fail()
		}
	}
}

func (d *decoder) trace(t *TraceResult) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "proto":
			d.once(&seen, 0)
			t.Proto = d.str()
		case "mode":
			d.once(&seen, 1)
			t.Mode = d.str()
		case "paris":
			d.once(&seen, 2)
			t.Paris = d.bool()
		case "flow_id":
			d.once(&seen, 3)
			t.FlowID = uint16(d.uint(16))
		case "sport":
			d.once(&seen, 4)
			t.SrcPort = d.int()
		case "dport":
			d.once(&seen, 5)
			t.DstPort = d.int()
		case "first_hop":
			d.once(&seen, 6)
			t.FirstHop = d.int()
		case "max_hops":
			d.once(&seen, 7)
			t.MaxHops = d.int()
		case "reached":
			d.once(&seen, 8)
			t.Reached = d.bool()
		case "dest_ttl_inferred":
			d.once(&seen, 9)
			t.DestTTLInferred = d.bool()
		case "hops":
			d.once(&seen, 10)
			if d.null() {
				continue
			}
			t.Hops = make([]Hop, 0, 16)
			for n := 0; d.elem(&n); {
				t.Hops = append(t.Hops, Hop{})
				d.hop(&t.Hops[len(t.Hops)-1])
			}
		default:
			d.fail()
		}
	}
}

func (d *decoder) hop(h *Hop) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "ttl":
			d.once(&seen, 0)
			h.TTL = d.int()
		case "probes":
			d.once(&seen, 1)
			if d.null() {
				continue
			}
			h.Probes = make([]HopProbe, 0, 3)
			for n := 0; d.elem(&n); {
				h.Probes = append(h.Probes, HopProbe{})
				d.hopProbe(&h.Probes[len(h.Probes)-1])
			}
		default:
			d.fail()
		}
	}
}

func (d *decoder) hopProbe(p *HopProbe) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "from":
			d.once(&seen, 0)
			p.From = d.str()
		case "rtt":
			d.once(&seen, 1)
			p.RTT = d.float()
		case "reply_ttl":
			d.once(&seen, 2)
			p.ReplyTTL = d.int()
		case "icmp_type":
			d.once(&seen, 3)
			p.ICMPType = d.int()
		case "icmp_code":
			d.once(&seen, 4)
			p.ICMPCode = d.int()
		case "mpls":
			d.once(&seen, 5)
			if d.null() {
				continue
			}
			p.MPLS = make([]MPLSLabel, 0, 2)
			for n := 0; d.elem(&n); {
				p.MPLS = append(p.MPLS, MPLSLabel{})
				d.mpls(&p.MPLS[len(p.MPLS)-1])
			}
		case "late":
			d.once(&seen, 6)
			p.Late = d.bool()
		case "timeout":
			d.once(&seen, 7)
			p.Timeout = d.bool()
		default:
			d.fail()
		}
	}
}

func (d *decoder) mpls(l *MPLSLabel) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "label":
			d.once(&seen, 0)
			l.Label = uint32(d.uint(32))
		case "tc":
			d.once(&seen, 1)
			l.TC = uint8(d.uint(8))
		case "s":
			d.once(&seen, 2)
			l.S = d.bool()
		case "ttl":
			d.once(&seen, 3)
			l.TTL = uint8(d.uint(8))
		default:
			d.fail()
		}
	}
}

func (d *decoder) dns(r *DNSResult) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "server":
			d.once(&seen, 0)
			r.Server = d.str()
		case "exchanges":
			d.once(&seen, 1)
			if d.null() {
				continue
			}
			r.Exchanges = make([]DNSExchange, 0, 4)
			for n := 0; d.elem(&n); {
				r.Exchanges = append(r.Exchanges, DNSExchange{})
				d.exchange(&r.Exchanges[len(r.Exchanges)-1])
			}
		case "identity":
			d.once(&seen, 2)
			if !d.null() {
				r.Identity = new(Identity)
				d.identity(r.Identity)
			}
		default:
			d.fail()
		}
	}
}

func (d *decoder) exchange(e *DNSExchange) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "qname":
			d.once(&seen, 0)
			e.QName = d.str()
		case "qclass":
			d.once(&seen, 1)
			e.QClass = d.str()
		case "qtype":
			d.once(&seen, 2)
			e.QType = d.str()
		case "proto":
			d.once(&seen, 3)
			e.Proto = d.str()
		case "tcp_fallback":
			d.once(&seen, 4)
			e.TCPFallback = d.bool()
		case "tries":
			d.once(&seen, 5)
			e.Tries = d.int()
		case "rtt":
			d.once(&seen, 6)
			e.RTT = d.float()
		case "rcode":
			d.once(&seen, 7)
			e.Rcode = d.str()
		case "flags":
			d.once(&seen, 8)
			e.Flags = d.strings()
		case "answers":
			d.once(&seen, 9)
			if d.null() {
				continue
			}
			e.Answers = make([]RR, 0, 2)
			for n := 0; d.elem(&n); {
				e.Answers = append(e.Answers, RR{})
				d.rr(&e.Answers[len(e.Answers)-1])
			}
		case "nsid":
			d.once(&seen, 10)
			e.NSID = d.str()
		case "nsid_hex":
			d.once(&seen, 11)
			e.NSIDHex = d.str()
		case "abuf":
			d.once(&seen, 12)
			e.Raw = d.bytes()
		case "error":
			d.once(&seen, 13)
			e.Error = d.str()
		default:
			d.fail()
		}
	}
}

func (d *decoder) rr(r *RR) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "name":
			d.once(&seen, 0)
			r.Name = d.str()
		case "type":
			d.once(&seen, 1)
			r.Type = d.str()
		case "class":
			d.once(&seen, 2)
			r.Class = d.str()
		case "ttl":
			d.once(&seen, 3)
			r.TTL = uint32(d.uint(32))
		case "data":
			d.once(&seen, 4)
			r.Data = d.str()
		default:
			d.fail()
		}
	}
}

func (d *decoder) identity(id *Identity) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "hostname_bind":
			d.once(&seen, 0)
			id.HostnameBind = d.str()
		case "id_server":
			d.once(&seen, 1)
			id.IDServer = d.str()
		case "nsid":
			d.once(&seen, 2)
			id.NSID = d.str()
		default:
			d.fail()
		}
	}
}
