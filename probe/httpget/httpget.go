// Package httpget is the probe's HTTP engine: one HTTP(S) request to an
// anycast address with the Host header and TLS SNI set from the target,
// recording timings (connect, TLS, first byte, total), the status, a
// bounded set of response headers, the first bytes of the body and the
// server certificate's names. CDN edges name their site in those headers
// or in a plain-text body (identity sources http_header and http_body).
//
// It is unprivileged and conservative: no redirects followed, no cookies,
// no proxy from the environment, no connection reuse, a small body cap.
package httpget

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// DefaultHeaders are the response headers always kept: the ones CDNs and
// anycast operators name their serving site or server in. A spec adds
// more with measure.HTTPSpec.Headers.
var DefaultHeaders = []string{
	"cf-ray", "server", "via", "x-served-by", "x-cache", "x-amz-cf-pop",
	"x-edge-location", "x-pop", "x-server", "x-site", "x-anycast-site",
}

// maxHeaderValue bounds one kept header value.
const maxHeaderValue = 512

// Options configures [Get]. The zero value is ready to use.
type Options struct {
	// Dial opens the TCP connection. Nil means a net.Dialer. Whatever
	// host the URL names, the engine always dials the measured address.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verifies certificates. Nil means the system roots.
	RootCAs *x509.CertPool
	// UserAgent is sent as User-Agent. "" means "anycatch-probe".
	UserAgent string
}

// Get performs the request spec describes against dst. A timeout, a
// refused connection, a TLS failure or an HTTP error status is a result
// (Error or Status set); the error return means the request could not be
// built at all.
func Get(ctx context.Context, dst netip.Addr, spec measure.HTTPSpec, opt Options) (*measure.HTTPResult, error) {
	spec = measure.Spec{Kind: measure.KindHTTP, HTTP: &spec}.WithDefaults().HTTP.Clone()
	dialAddr := netip.AddrPortFrom(dst, uint16(spec.Port)).String()
	host := spec.Host
	if host == "" {
		host = dst.String()
	}
	urlHost := host
	if strings.Contains(urlHost, ":") {
		urlHost = "[" + urlHost + "]"
	}
	defPort := map[string]int{"https": 443, "http": 80}[spec.Scheme]
	if spec.Port != defPort {
		urlHost += ":" + strconv.Itoa(spec.Port)
	}
	res := &measure.HTTPResult{URL: spec.Scheme + "://" + urlHost + spec.Path}
	if spec.Host != "" {
		res.Host = spec.Host
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(spec.TimeoutMS)*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, spec.Method, res.URL, nil)
	if err != nil {
		return res, fmt.Errorf("build http request: %w", err)
	}
	ua := opt.UserAgent
	if ua == "" {
		ua = "anycatch-probe"
	}
	req.Header.Set("User-Agent", ua)

	dial := opt.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	start := time.Now()
	since := func() float64 { return float64(time.Since(start).Microseconds()) / 1000 }
	var certErr error
	tr := &http.Transport{
		Proxy:             nil, // never a proxy from the environment: we measure the path to dst
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(ctx, network, dialAddr)
		},
		TLSClientConfig: &tls.Config{
			ServerName: host,
			// Verification is done below so that the certificate's names
			// are recorded even when it does not verify.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				res.TLS = tlsInfo(&cs)
				if spec.Insecure || len(cs.PeerCertificates) == 0 {
					return nil
				}
				opts := x509.VerifyOptions{DNSName: host, Roots: opt.RootCAs, Intermediates: x509.NewCertPool()}
				for _, c := range cs.PeerCertificates[1:] {
					opts.Intermediates.AddCert(c)
				}
				if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
					certErr = err
					return err
				}
				return nil
			},
		},
		TLSHandshakeTimeout:    time.Duration(spec.TimeoutMS) * time.Millisecond,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true, // the body is read as sent, and is small
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var connStart time.Time
	trace := &httptrace.ClientTrace{
		ConnectStart: func(string, string) { connStart = time.Now() },
		ConnectDone: func(_, _ string, err error) {
			if err == nil && !connStart.IsZero() {
				res.ConnectMS = float64(time.Since(connStart).Microseconds()) / 1000
			}
		},
		TLSHandshakeDone:     func(tls.ConnectionState, error) { res.TLSMS = since() },
		GotFirstResponseByte: func() { res.FirstByteMS = since() },
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := client.Do(req)
	if err != nil {
		res.Error = describe(err, certErr, ctx)
		res.TotalMS = since()
		return res, nil
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	res.Proto = resp.Proto
	res.Headers = KeepHeaders(resp.Header, spec.Headers)
	if spec.BodyBytes > 0 && spec.Method != http.MethodHead {
		b, err := io.ReadAll(io.LimitReader(resp.Body, int64(spec.BodyBytes)+1))
		if len(b) > spec.BodyBytes {
			b, res.BodyTruncated = b[:spec.BodyBytes], true
		}
		res.Body = strings.ToValidUTF8(string(b), "\uFFFD")
		if len(res.Body) > measure.MaxHTTPBody { // replacement characters grew it
			res.Body, res.BodyTruncated = strings.ToValidUTF8(res.Body[:measure.MaxHTTPBody], ""), true
		}
		if err != nil {
			res.Error = "body: " + describe(err, nil, ctx)
		}
	}
	res.TotalMS = since()
	return res, nil
}

func describe(err, certErr error, ctx context.Context) string {
	var ne net.Error
	switch {
	case certErr != nil:
		return "tls: certificate: " + certErr.Error()
	case ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return "connect: " + oe.Err.Error()
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		err = ue.Unwrap()
	}
	return err.Error()
}

func tlsInfo(cs *tls.ConnectionState) *measure.TLSInfo {
	t := &measure.TLSInfo{Version: tls.VersionName(cs.Version)}
	if len(cs.PeerCertificates) > 0 {
		c := cs.PeerCertificates[0]
		t.Subject = clip(c.Subject.String(), 1024)
		for _, n := range c.DNSNames {
			if len(t.SANs) == 256 {
				break
			}
			t.SANs = append(t.SANs, clip(n, 253))
		}
		for _, ip := range c.IPAddresses {
			if len(t.SANs) == 256 {
				break
			}
			t.SANs = append(t.SANs, ip.String())
		}
	}
	return t
}

// KeepHeaders returns the headers of h named in DefaultHeaders or extra
// (case-insensitively), names lowercase, sorted by name; repeated headers
// are joined with ", ". Values are cut to 512 bytes, made valid UTF-8, and
// the whole stays within measure.MaxHTTPHeaders and MaxHTTPHeaderBytes.
func KeepHeaders(h http.Header, extra []string) []measure.HTTPHeader {
	want := make(map[string]bool, len(DefaultHeaders)+len(extra))
	for _, n := range DefaultHeaders {
		want[n] = true
	}
	for _, n := range extra {
		want[strings.ToLower(n)] = true
	}
	var out []measure.HTTPHeader
	for name, vs := range h {
		n := strings.ToLower(name)
		if !want[n] || len(vs) == 0 {
			continue
		}
		out = append(out, measure.HTTPHeader{Name: n, Value: clip(strings.Join(vs, ", "), maxHeaderValue)})
	}
	slices.SortFunc(out, func(a, b measure.HTTPHeader) int { return strings.Compare(a.Name, b.Name) })
	// Two spellings of one name ("X-Site" and "x-site" from a raw map)
	// become one header.
	out = slices.CompactFunc(out, func(a, b measure.HTTPHeader) bool { return a.Name == b.Name })
	total := 0
	for i, x := range out {
		total += len(x.Name) + len(x.Value)
		if i == measure.MaxHTTPHeaders || total > measure.MaxHTTPHeaderBytes {
			return out[:i]
		}
	}
	return out
}

// clip cuts s to at most n bytes of valid UTF-8 without control characters
// other than tab.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}
