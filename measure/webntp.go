package measure

// HTTP and NTP measurements: identity beyond DNS CHAOS. CDN edges name
// themselves in response headers or a plain-text trace body, anycast NTP
// servers in their reference id; these payloads keep exactly what an
// identity rule may look at, bounded in size.

// Limits of http and ntp results.
const (
	MaxHTTPBody        = 16384 // bytes of body kept at most
	MaxHTTPHeaders     = 64    // headers kept at most
	MaxHTTPHeaderBytes = 8192  // bytes of all kept header names and values
	MaxHTTPExtra       = 16    // extra header names a spec may ask to keep
)

// HTTPSpec configures one HTTP(S) request to the anycast address. Zero
// fields mean the documented default.
type HTTPSpec struct {
	Scheme    string   `json:"scheme,omitempty"`     // "https" or "http"; "" means https
	Host      string   `json:"host,omitempty"`       // Host header and TLS SNI; "" means the address itself
	Path      string   `json:"path,omitempty"`       // request path, starting with "/"; "" means "/"
	Method    string   `json:"method,omitempty"`     // "GET" or "HEAD"; "" means GET
	Port      int      `json:"port,omitempty"`       // 0 means 443 for https, 80 for http
	Headers   []string `json:"headers,omitempty"`    // extra response header names to keep beyond the built-in allowlist
	BodyBytes int      `json:"body_bytes,omitempty"` // body bytes kept; 0 means 2048, -1 means none
	Insecure  bool     `json:"insecure,omitempty"`   // accept any certificate (its subject and SANs are still recorded)
	TimeoutMS int      `json:"timeout_ms,omitempty"` // whole request; 0 means 5000
}

// NTPSpec configures one NTPv4 client query.
type NTPSpec struct {
	Port      int `json:"port,omitempty"`       // 0 means 123
	TimeoutMS int `json:"timeout_ms,omitempty"` // 0 means 2000
}

// HTTPResult is the outcome of an http measurement. Timings are in
// milliseconds: ConnectMS is the TCP handshake alone (about one RTT, the
// result's RTT), TLSMS, FirstByteMS and TotalMS are counted from the start
// of the request. A field is absent when that step was not reached.
type HTTPResult struct {
	URL           string       `json:"url"`
	Host          string       `json:"host,omitempty"` // Host header and SNI sent
	Status        int          `json:"status,omitempty"`
	Proto         string       `json:"proto,omitempty"` // "HTTP/1.1", "HTTP/2.0"
	ConnectMS     float64      `json:"connect_ms,omitempty"`
	TLSMS         float64      `json:"tls_ms,omitempty"`
	FirstByteMS   float64      `json:"ttfb_ms,omitempty"`
	TotalMS       float64      `json:"total_ms,omitempty"`
	Headers       []HTTPHeader `json:"headers,omitempty"` // kept headers, names lowercase, in received order
	Body          string       `json:"body,omitempty"`    // first bytes of the body, invalid UTF-8 replaced
	BodyTruncated bool         `json:"body_truncated,omitempty"`
	TLS           *TLSInfo     `json:"tls,omitempty"`
	Error         string       `json:"error,omitempty"` // "timeout", "connect: …", "tls: …"
}

// HTTPHeader is one kept response header.
type HTTPHeader struct {
	Name  string `json:"name"` // lowercase
	Value string `json:"value"`
}

// TLSInfo is what the server's certificate says.
type TLSInfo struct {
	Version string   `json:"version"`
	Subject string   `json:"subject,omitempty"`
	SANs    []string `json:"sans,omitempty"`
}

// NTPResult is the outcome of an ntp measurement. Times are in
// milliseconds.
type NTPResult struct {
	Server      string  `json:"server"` // address:port asked
	RTT         float64 `json:"rtt,omitempty"`
	Version     int     `json:"version,omitempty"`
	Leap        int     `json:"leap"`
	Stratum     int     `json:"stratum"`
	RefID       string  `json:"refid,omitempty"` // stratum 0/1: the ASCII code ("GPS", or the kiss code); 2+: IPv4 dotted or hex
	RootDelayMS float64 `json:"root_delay_ms"`
	RootDispMS  float64 `json:"root_disp_ms"`
	OffsetMS    float64 `json:"offset_ms"`
	Kiss        string  `json:"kiss,omitempty"`  // kiss-o'-death code (stratum 0): "RATE", "DENY", "RSTR"
	Error       string  `json:"error,omitempty"` // "timeout", "malformed reply: …"
}

// Clone returns a copy of s that shares no slice with it.
func (s *HTTPSpec) Clone() HTTPSpec {
	c := *s
	c.Headers = append([]string(nil), s.Headers...)
	return c
}

// Header returns the value of the first kept header named name
// (lowercase), and whether there was one.
func (h *HTTPResult) Header(name string) (string, bool) {
	for _, x := range h.Headers {
		if x.Name == name {
			return x.Value, true
		}
	}
	return "", false
}
