package atlas

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/anycatch/anycatch/measure"
)

// Export is the Atlas-like JSON shape [FromResult] produces; docs/atlas.md
// lists which fields overlap with Atlas and what they mean. Atlas tools
// that read prb_id/msm_id as integers get integers for imported Atlas
// results ("atlas:N") and 0 for anycatch's own, whose ids are in
// "anycatch".
type Export struct {
	Type      string          `json:"type"` // "dns", "ping" or "traceroute"
	FW        int             `json:"fw"`   // always 5000: the newest result format
	PrbID     int             `json:"prb_id"`
	MsmID     int             `json:"msm_id"`
	MsmName   string          `json:"msm_name"`
	Timestamp int64           `json:"timestamp"`
	Endtime   int64           `json:"endtime,omitempty"`
	AF        int             `json:"af"`
	DstAddr   string          `json:"dst_addr"`
	SrcAddr   string          `json:"src_addr,omitempty"`
	Proto     string          `json:"proto,omitempty"`
	Error     map[string]any  `json:"error,omitempty"`
	Qbuf      string          `json:"qbuf,omitempty"` // query, when there is no abuf to take it from
	Result    json.RawMessage `json:"result,omitempty"`
	Resultset []exportSub     `json:"resultset,omitempty"`
	ParisID   *int            `json:"paris_id,omitempty"`
	Size      *int            `json:"size,omitempty"`
	// ping summary (Atlas writes -1 for "none")
	Sent *int     `json:"sent,omitempty"`
	Rcvd *int     `json:"rcvd,omitempty"`
	Dup  *int     `json:"dup,omitempty"`
	Min  *float64 `json:"min,omitempty"`
	Avg  *float64 `json:"avg,omitempty"`
	Max  *float64 `json:"max,omitempty"`

	Anycatch ExportMeta `json:"anycatch"`
}

// ExportMeta carries anycatch's own identifiers, which Atlas has no field
// for.
type ExportMeta struct {
	V           int          `json:"v"`
	ID          measure.UUID `json:"id"`
	Probe       string       `json:"probe"`
	Measurement string       `json:"msm"`
	Target      string       `json:"target,omitempty"`
	Kind        measure.Kind `json:"kind"`
	Error       string       `json:"error,omitempty"`
}

type exportSub struct {
	AF      int             `json:"af"`
	DstAddr string          `json:"dst_addr"`
	SrcAddr string          `json:"src_addr,omitempty"`
	Proto   string          `json:"proto,omitempty"`
	Time    int64           `json:"time"`
	Error   map[string]any  `json:"error,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Qbuf    string          `json:"qbuf,omitempty"`
}

type exportDNS struct {
	RT      float64        `json:"rt"`
	Size    int            `json:"size,omitempty"`
	Abuf    string         `json:"abuf,omitempty"`
	Answers []exportLegacy `json:"answers,omitempty"`
}

type exportLegacy struct {
	Type  string   `json:"TYPE"`
	Name  string   `json:"NAME"`
	RData []string `json:"RDATA"`
}

type exportPingReply struct {
	RTT *float64 `json:"rtt,omitempty"`
	TTL int      `json:"ttl,omitempty"`
	Dup int      `json:"dup,omitempty"`
	X   string   `json:"x,omitempty"`
}

type exportHop struct {
	Hop    int              `json:"hop"`
	Result []map[string]any `json:"result"`
}

// FromResult renders r in the Atlas result format (see [Export]), so tools
// written for Atlas can read anycatch results. probeID overrides r.Probe
// when not empty. A dns result with one exchange becomes a plain Atlas
// dns result; with several (identity measurements) a "resultset".
func FromResult(r *measure.Result, probeID string) ([]byte, error) {
	if probeID == "" {
		probeID = r.Probe
	}
	e := Export{
		FW: 5000, MsmName: r.Measurement, Timestamp: r.Time.Unix(), AF: r.AF, DstAddr: r.Dst, SrcAddr: r.Src,
		PrbID: atlasNumber(probeID), MsmID: atlasNumber(r.Measurement),
		Anycatch: ExportMeta{V: r.V, ID: r.ID, Probe: probeID, Measurement: r.Measurement, Target: r.Target, Kind: r.Kind, Error: r.Error},
	}
	if r.Error != "" {
		e.Error = errorObject(r.Error)
	}
	var err error
	switch {
	case r.DNS != nil:
		e.Type = "dns"
		err = exportDNSResult(&e, r)
	case r.Ping != nil:
		e.Type = "ping"
		err = exportPing(&e, r.Ping)
	case r.Trace != nil:
		e.Type = "traceroute"
		err = exportTrace(&e, r)
	case r.Error != "":
		e.Type = map[measure.Kind]string{measure.KindPing: "ping", measure.KindTrace: "traceroute"}[r.Kind]
		if e.Type == "" {
			e.Type = "dns"
		}
	default:
		return nil, errors.New("result has no payload")
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// errorObject is the Atlas "error" object for a result's error text: the
// inverse of the importer's atlasError, which turns {"socket": "X"} into
// "socket: X". Text of that shape goes back to its keys (wrapping it in
// "socket" again gave "socket: socket: X" after each round trip); any
// other text is a socket error.
func errorObject(msg string) map[string]any {
	obj := map[string]any{}
	for _, part := range strings.Split(msg, "; ") {
		k, v, ok := strings.Cut(part, ": ")
		if !ok || !isErrorKey(k) || obj[k] != nil {
			return map[string]any{"socket": msg}
		}
		obj[k] = v
	}
	return obj
}

// isErrorKey reports whether k looks like an Atlas error key (socket,
// getaddrinfo, sendto …): a lower-case word.
func isErrorKey(k string) bool {
	if k == "" || k == "timeout" {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// atlasNumber returns N for "atlas:N", else 0.
func atlasNumber(s string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "atlas:"))
	if err != nil || !strings.HasPrefix(s, "atlas:") {
		return 0
	}
	return n
}

// queryBuf packs the question of an exchange without a raw reply, so
// the query survives the trip through the Atlas shape.
func queryBuf(ex *measure.DNSExchange) string {
	if len(ex.Raw) > 0 || ex.QName == "" {
		return ""
	}
	c, ok1 := dns.StringToClass[ex.QClass]
	t, ok2 := dns.StringToType[ex.QType]
	if !ok1 || !ok2 {
		return ""
	}
	m := new(dns.Msg)
	m.Question = []dns.Question{{Name: ex.QName, Qtype: t, Qclass: c}}
	b, err := m.Pack()
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

func exportExchange(ex *measure.DNSExchange) (res json.RawMessage, errObj map[string]any, err error) {
	if ex.Error != "" && len(ex.Raw) == 0 {
		if ex.Error == "timeout" {
			return nil, map[string]any{"timeout": 0}, nil
		}
		return nil, errorObject(ex.Error), nil
	}
	d := exportDNS{RT: ex.RTT, Size: len(ex.Raw)}
	if len(ex.Raw) > 0 {
		d.Abuf = base64.StdEncoding.EncodeToString(ex.Raw)
	} else {
		for _, a := range ex.Answers {
			d.Answers = append(d.Answers, exportLegacy{Type: a.Type, Name: strings.TrimSuffix(a.Name, "."), RData: []string{a.Data}})
		}
	}
	b, err := json.Marshal(d)
	return b, nil, err
}

func exportDNSResult(e *Export, r *measure.Result) error {
	ex := r.DNS.Exchanges
	if len(ex) == 1 {
		e.Proto = strings.ToUpper(ex[0].Proto)
		e.Qbuf = queryBuf(&ex[0])
		res, errObj, err := exportExchange(&ex[0])
		e.Result = res
		if errObj != nil {
			e.Error = errObj
		}
		return err
	}
	for i := range ex {
		res, errObj, err := exportExchange(&ex[i])
		if err != nil {
			return err
		}
		e.Resultset = append(e.Resultset, exportSub{AF: r.AF, DstAddr: r.Dst, SrcAddr: r.Src, Proto: strings.ToUpper(ex[i].Proto),
			Time: r.Time.Unix(), Error: errObj, Result: res, Qbuf: queryBuf(&ex[i])})
	}
	return nil
}

func exportPing(e *Export, p *measure.PingResult) error {
	ip := func(v int) *int { return &v }
	none := func(v *float64) *float64 {
		if v == nil {
			m := -1.0
			return &m
		}
		return v
	}
	e.Proto = "ICMP"
	e.Size, e.Sent, e.Rcvd, e.Dup = ip(p.Size), ip(p.Sent), ip(p.Received), ip(p.Duplicates)
	e.Min, e.Avg, e.Max = none(p.Min), none(p.Avg), none(p.Max)
	// Atlas lists one entry per packet sent, in order, with duplicates
	// where they arrived; sequence numbers without a reply are timeouts.
	var out []exportPingReply
	bySeq := map[int][]measure.PingReply{}
	maxSeq := p.Sent - 1
	for _, rp := range p.Replies {
		bySeq[rp.Seq] = append(bySeq[rp.Seq], rp)
		maxSeq = max(maxSeq, rp.Seq)
	}
	for seq := 0; seq <= maxSeq; seq++ {
		rs, ok := bySeq[seq]
		if !ok {
			out = append(out, exportPingReply{X: "*"})
			continue
		}
		for _, rp := range rs {
			rtt := rp.RTT
			o := exportPingReply{RTT: &rtt, TTL: rp.TTL}
			if rp.Dup {
				o.Dup = 1
			}
			out = append(out, o)
		}
	}
	b, err := json.Marshal(out)
	e.Result = b
	return err
}

// Inverse of icmpFromErr for the letters Atlas uses.
func errLetter(af, typ, code int) any {
	codes, want := errCodes4, 3
	if af == 6 {
		codes, want = errCodes6, 1
	}
	if typ == want {
		for l, c := range codes {
			if c == code {
				return l
			}
		}
	}
	if af == 6 && typ == 4 && code == 1 {
		return "P"
	}
	return code
}

func exportTrace(e *Export, r *measure.Result) error {
	t := r.Trace
	e.Proto = strings.ToUpper(t.Proto)
	if t.Paris {
		id := int(t.FlowID)
		e.ParisID = &id
	}
	if r.DurationMS > 0 {
		e.Endtime = r.Time.Unix() + int64(r.DurationMS/1000)
	}
	hops := make([]exportHop, 0, len(t.Hops))
	for _, h := range t.Hops {
		eh := exportHop{Hop: h.TTL, Result: []map[string]any{}}
		for _, p := range h.Probes {
			m := map[string]any{}
			switch {
			case p.Timeout:
				m["x"] = "*"
			default:
				m["from"] = p.From
				if p.ReplyTTL != 0 {
					m["ttl"] = p.ReplyTTL
				}
				if p.Late {
					m["late"] = 1
				} else {
					m["rtt"] = p.RTT
				}
				if p.ICMPType != 0 || p.ICMPCode != 0 {
					m["err"] = errLetter(r.AF, p.ICMPType, p.ICMPCode)
				}
				if len(p.MPLS) > 0 {
					var labels []map[string]any
					for _, l := range p.MPLS {
						s := 0
						if l.S {
							s = 1
						}
						labels = append(labels, map[string]any{"label": l.Label, "exp": l.TC, "s": s, "ttl": l.TTL})
					}
					m["icmpext"] = map[string]any{"version": 2, "rfc4884": 0, "obj": []map[string]any{{"class": 1, "type": 1, "mpls": labels}}}
				}
			}
			eh.Result = append(eh.Result, m)
		}
		hops = append(hops, eh)
	}
	b, err := json.Marshal(hops)
	e.Result = b
	return err
}
