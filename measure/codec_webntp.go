package measure

// Hand-written codec for the http and ntp payloads; byte for byte what
// encoding/json writes and reads (see encode.go and decode.go).

func (e *encoder) http(h *HTTPResult) {
	first := true
	e.b = append(e.b, '{')
	e.key(&first, `"url":`)
	e.str(h.URL)
	if h.Host != "" {
		e.key(&first, `"host":`)
		e.str(h.Host)
	}
	if h.Status != 0 {
		e.key(&first, `"status":`)
		e.int(h.Status)
	}
	if h.Proto != "" {
		e.key(&first, `"proto":`)
		e.str(h.Proto)
	}
	for _, f := range [...]struct {
		key string
		v   float64
	}{{`"connect_ms":`, h.ConnectMS}, {`"tls_ms":`, h.TLSMS}, {`"ttfb_ms":`, h.FirstByteMS}, {`"total_ms":`, h.TotalMS}} {
		if f.v != 0 {
			e.key(&first, f.key)
			e.float(f.v)
		}
	}
	if len(h.Headers) > 0 {
		e.key(&first, `"headers":`)
		e.b = append(e.b, '[')
		for i := range h.Headers {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, `{"name":`...)
			e.str(h.Headers[i].Name)
			e.b = append(e.b, `,"value":`...)
			e.str(h.Headers[i].Value)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	if h.Body != "" {
		e.key(&first, `"body":`)
		e.str(h.Body)
	}
	if h.BodyTruncated {
		e.key(&first, `"body_truncated":`)
		e.bool(true)
	}
	if t := h.TLS; t != nil {
		e.key(&first, `"tls":`)
		first := true
		e.b = append(e.b, '{')
		e.key(&first, `"version":`)
		e.str(t.Version)
		if t.Subject != "" {
			e.key(&first, `"subject":`)
			e.str(t.Subject)
		}
		if len(t.SANs) > 0 {
			e.key(&first, `"sans":`)
			e.strings(t.SANs)
		}
		e.b = append(e.b, '}')
	}
	if h.Error != "" {
		e.key(&first, `"error":`)
		e.str(h.Error)
	}
	e.b = append(e.b, '}')
}

func (e *encoder) ntp(n *NTPResult) {
	first := true
	e.b = append(e.b, '{')
	e.key(&first, `"server":`)
	e.str(n.Server)
	if n.RTT != 0 {
		e.key(&first, `"rtt":`)
		e.float(n.RTT)
	}
	if n.Version != 0 {
		e.key(&first, `"version":`)
		e.int(n.Version)
	}
	e.key(&first, `"leap":`)
	e.int(n.Leap)
	e.key(&first, `"stratum":`)
	e.int(n.Stratum)
	if n.RefID != "" {
		e.key(&first, `"refid":`)
		e.str(n.RefID)
	}
	e.key(&first, `"root_delay_ms":`)
	e.float(n.RootDelayMS)
	e.key(&first, `"root_disp_ms":`)
	e.float(n.RootDispMS)
	e.key(&first, `"offset_ms":`)
	e.float(n.OffsetMS)
	if n.Kiss != "" {
		e.key(&first, `"kiss":`)
		e.str(n.Kiss)
	}
	if n.Error != "" {
		e.key(&first, `"error":`)
		e.str(n.Error)
	}
	e.b = append(e.b, '}')
}

func (d *decoder) http(h *HTTPResult) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "url":
			d.once(&seen, 0)
			h.URL = d.str()
		case "host":
			d.once(&seen, 1)
			h.Host = d.str()
		case "status":
			d.once(&seen, 2)
			h.Status = d.int()
		case "proto":
			d.once(&seen, 3)
			h.Proto = d.str()
		case "connect_ms":
			d.once(&seen, 4)
			h.ConnectMS = d.float()
		case "tls_ms":
			d.once(&seen, 5)
			h.TLSMS = d.float()
		case "ttfb_ms":
			d.once(&seen, 6)
			h.FirstByteMS = d.float()
		case "total_ms":
			d.once(&seen, 7)
			h.TotalMS = d.float()
		case "headers":
			d.once(&seen, 8)
			if d.null() {
				continue
			}
			h.Headers = make([]HTTPHeader, 0, 8)
			for n := 0; d.elem(&n); {
				h.Headers = append(h.Headers, HTTPHeader{})
				d.httpHeader(&h.Headers[len(h.Headers)-1])
			}
		case "body":
			d.once(&seen, 9)
			h.Body = d.str()
		case "body_truncated":
			d.once(&seen, 10)
			h.BodyTruncated = d.bool()
		case "tls":
			d.once(&seen, 11)
			if !d.null() {
				h.TLS = new(TLSInfo)
				d.tlsInfo(h.TLS)
			}
		case "error":
			d.once(&seen, 12)
			h.Error = d.str()
		default:
			d.fail()
		}
	}
}

func (d *decoder) httpHeader(x *HTTPHeader) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "name":
			d.once(&seen, 0)
			x.Name = d.str()
		case "value":
			d.once(&seen, 1)
			x.Value = d.str()
		default:
			d.fail()
		}
	}
}

func (d *decoder) tlsInfo(t *TLSInfo) {
	var seen uint32
	for n := 0; ; {
		key, ok := d.field(&n)
		if !ok {
			return
		}
		switch key {
		case "version":
			d.once(&seen, 0)
			t.Version = d.str()
		case "subject":
			d.once(&seen, 1)
			t.Subject = d.str()
		case "sans":
			d.once(&seen, 2)
			t.SANs = d.strings()
		default:
			d.fail()
		}
	}
}

func (d *decoder) ntp(r *NTPResult) {
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
		case "rtt":
			d.once(&seen, 1)
			r.RTT = d.float()
		case "version":
			d.once(&seen, 2)
			r.Version = d.int()
		case "leap":
			d.once(&seen, 3)
			r.Leap = d.int()
		case "stratum":
			d.once(&seen, 4)
			r.Stratum = d.int()
		case "refid":
			d.once(&seen, 5)
			r.RefID = d.str()
		case "root_delay_ms":
			d.once(&seen, 6)
			r.RootDelayMS = d.float()
		case "root_disp_ms":
			d.once(&seen, 7)
			r.RootDispMS = d.float()
		case "offset_ms":
			d.once(&seen, 8)
			r.OffsetMS = d.float()
		case "kiss":
			d.once(&seen, 9)
			r.Kiss = d.str()
		case "error":
			d.once(&seen, 10)
			r.Error = d.str()
		default:
			d.fail()
		}
	}
}
