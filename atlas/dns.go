package atlas

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/anycatch/anycatch/measure"
)

type rawDNS struct {
	RT      num           `json:"rt"`
	Abuf    string        `json:"abuf"`
	Answers []rawLegacyRR `json:"answers"`
}

// rawLegacyRR is the decoded answer subset old firmware wrote next to (or
// instead of) abuf. TYPE is a mnemonic or, in the oldest results, a
// number; RDATA a string or a list of strings.
type rawLegacyRR struct {
	Type  json.RawMessage `json:"TYPE"`
	Name  string          `json:"NAME"`
	RData json.RawMessage `json:"RDATA"`
	TTL   num             `json:"TTL"`
	// SOA answers carry their fields separately.
	MName  string `json:"MNAME"`
	RName  string `json:"RNAME"`
	Serial num    `json:"SERIAL"`
}

// fillDNS builds r.DNS (or r.Error) from one dns result: the result
// object, the error, and the query buffer when Atlas kept it.
func fillDNS(r *measure.Result, proto string, errRaw, resRaw json.RawMessage, qbuf string) error {
	// Atlas results name no port; Atlas DNS measurements use 53.
	d := &measure.DNSResult{Server: joinHostPort(r.Dst, "53")}
	ex := measure.DNSExchange{Proto: strings.ToLower(proto)}
	if q := decodeQuestion(qbuf); q != nil {
		ex.QName, ex.QClass, ex.QType = q.Name, dns.ClassToString[q.Qclass], dns.TypeToString[q.Qtype]
	}
	timeout, msg := atlasError(errRaw)
	switch {
	case timeout:
		ex.Error = "timeout"
		d.Exchanges = []measure.DNSExchange{ex}
		r.DNS = d
		return nil
	case msg != "":
		// The probe could not ask at all (socket, name resolution).
		r.Error = truncate(msg, 1024)
		return nil
	}
	if len(resRaw) == 0 || string(resRaw) == "null" {
		return errors.New("dns result without result or error")
	}
	var res rawDNS
	if err := json.Unmarshal(resRaw, &res); err != nil {
		return fmt.Errorf("dns result: %w", err)
	}
	ex.RTT = res.RT.v
	if res.Abuf != "" {
		buf, err := base64.StdEncoding.DecodeString(res.Abuf)
		if err != nil {
			return fmt.Errorf("abuf: %w", err)
		}
		if len(buf) > measure.MaxDNSRawBytes {
			return fmt.Errorf("abuf: %d bytes is more than %d", len(buf), measure.MaxDNSRawBytes)
		}
		ex.Raw = buf
		d.Identity = decodeReply(&ex, buf)
	} else {
		d.Identity = legacyAnswers(&ex, res.Answers)
	}
	d.Exchanges = []measure.DNSExchange{ex}
	r.DNS = d
	return nil
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

func decodeQuestion(qbuf string) *dns.Question {
	if qbuf == "" {
		return nil
	}
	buf, err := base64.StdEncoding.DecodeString(qbuf)
	if err != nil {
		return nil
	}
	var m dns.Msg
	if m.Unpack(buf) != nil || len(m.Question) == 0 {
		return nil
	}
	return &m.Question[0]
}

// decodeReply fills ex from a wire-format reply and returns the identity
// strings it carries (nil when none). A reply that does not parse keeps
// its raw bytes and gets the error "malformed reply: …".
func decodeReply(ex *measure.DNSExchange, buf []byte) *measure.Identity {
	var m dns.Msg
	if err := m.Unpack(buf); err != nil {
		ex.Error = "malformed reply: " + err.Error()
		return nil
	}
	if len(m.Question) > 0 {
		q := m.Question[0]
		ex.QName, ex.QClass, ex.QType = q.Name, classString(q.Qclass), typeString(q.Qtype)
	}
	ex.Rcode = dns.RcodeToString[m.Rcode]
	if ex.Rcode == "" {
		ex.Rcode = strconv.Itoa(m.Rcode)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"},
		{m.RecursionAvailable, "ra"}, {m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"}} {
		if f.on {
			ex.Flags = append(ex.Flags, f.name)
		}
	}
	var id measure.Identity
	for i, rr := range m.Answer {
		if i >= measure.MaxAnswers {
			break
		}
		h := rr.Header()
		out := measure.RR{Name: h.Name, Type: typeString(h.Rrtype), Class: classString(h.Class), TTL: h.Ttl}
		if txt, ok := rr.(*dns.TXT); ok {
			out.Data = strings.Join(txt.Txt, "")
			setIdentity(&id, h.Name, out.Data)
		} else {
			out.Data = strings.TrimPrefix(rr.String(), h.String())
		}
		ex.Answers = append(ex.Answers, out)
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok && n.Nsid != "" {
				raw, err := hex.DecodeString(n.Nsid)
				if err != nil {
					continue
				}
				ex.NSIDHex = n.Nsid
				ex.NSID = nsidText(raw)
				id.NSID = ex.NSID
			}
		}
	}
	if id.Empty() {
		return nil
	}
	return &id
}

func classString(c uint16) string {
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return "CLASS" + strconv.Itoa(int(c))
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// setIdentity records a TXT answer owned by one of the identity names.
func setIdentity(id *measure.Identity, owner, text string) {
	switch strings.ToLower(strings.TrimSuffix(owner, ".")) {
	case "hostname.bind":
		if id.HostnameBind == "" {
			id.HostnameBind = text
		}
	case "id.server":
		if id.IDServer == "" {
			id.IDServer = text
		}
	}
}

// nsidText renders NSID bytes as text: printable ASCII as is, everything
// else (and the backslash) as \DDD, the DNS presentation escape.
func nsidText(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "\\%03d", c)
	}
	return sb.String()
}

// legacyAnswers converts the decoded answer subset of results without
// abuf. The question is not recorded in that format: QName and QType are
// taken from the first answer.
func legacyAnswers(ex *measure.DNSExchange, answers []rawLegacyRR) *measure.Identity {
	var id measure.Identity
	for i, a := range answers {
		if i >= measure.MaxAnswers {
			break
		}
		rr := measure.RR{Name: dns.Fqdn(a.Name), TTL: uint32(a.TTL.v)}
		var ts string
		var tn float64
		switch {
		case json.Unmarshal(a.Type, &ts) == nil:
			rr.Type = ts
		case json.Unmarshal(a.Type, &tn) == nil:
			rr.Type = typeString(uint16(tn))
		}
		var s string
		var list []string
		switch {
		case json.Unmarshal(a.RData, &s) == nil:
			rr.Data = s
		case json.Unmarshal(a.RData, &list) == nil:
			rr.Data = strings.Join(list, "")
		case a.MName != "":
			rr.Data = fmt.Sprintf("%s %s %d", a.MName, a.RName, int64(a.Serial.v))
		}
		if rr.Type == "TXT" {
			setIdentity(&id, rr.Name, rr.Data)
		}
		if i == 0 && ex.QName == "" && rr.Name != "." {
			ex.QName, ex.QType = rr.Name, rr.Type
		}
		ex.Answers = append(ex.Answers, rr)
	}
	if id.Empty() {
		return nil
	}
	return &id
}
