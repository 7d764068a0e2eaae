package httpget

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/anycatch/anycatch/measure"
)

func addrPort(t *testing.T, srvURL string) (netip.Addr, int) {
	t.Helper()
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(u.Host)
	return ap.Addr(), int(ap.Port())
}

func TestGetHTTP(t *testing.T) {
	var gotHost, gotUA, gotCookie string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotUA, gotCookie = r.Host, r.UserAgent(), r.Header.Get("Cookie")
		switch r.URL.Path {
		case "/cdn-cgi/trace":
			w.Header().Set("CF-RAY", "838b4de849121c7b-AMS")
			w.Header().Set("Set-Cookie", "a=b")
			w.Header().Set("X-Secret", "not kept")
			w.Header().Add("Via", "1.1 a")
			w.Header().Add("Via", "1.1 b")
			w.Write([]byte("fl=1\ncolo=AMS\n" + strings.Repeat("x", 100)))
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	defer srv.Close()
	dst, port := addrPort(t, srv.URL)
	res, err := Get(context.Background(), dst, measure.HTTPSpec{Scheme: "http", Host: "one.one.one.one", Path: "/cdn-cgi/trace", Port: port, BodyBytes: 20, TimeoutMS: 5000}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || res.Error != "" {
		t.Fatalf("got status %d error %q", res.Status, res.Error)
	}
	if gotHost != "one.one.one.one:"+strconv.Itoa(port) || gotUA != "anycatch-probe" || gotCookie != "" {
		t.Errorf("request: got Host %q UA %q Cookie %q", gotHost, gotUA, gotCookie)
	}
	want := []measure.HTTPHeader{{Name: "cf-ray", Value: "838b4de849121c7b-AMS"}, {Name: "via", Value: "1.1 a, 1.1 b"}}
	if len(res.Headers) != 2 || res.Headers[0] != want[0] || res.Headers[1] != want[1] {
		t.Errorf("headers: got %+v, want %+v", res.Headers, want)
	}
	if res.Body != "fl=1\ncolo=AMS\nxxxxxx" || !res.BodyTruncated {
		t.Errorf("body: got %q truncated %v", res.Body, res.BodyTruncated)
	}
	if res.ConnectMS <= 0 || res.FirstByteMS < res.ConnectMS || res.TotalMS < res.FirstByteMS || res.TLSMS != 0 {
		t.Errorf("timings: connect %v tls %v ttfb %v total %v", res.ConnectMS, res.TLSMS, res.FirstByteMS, res.TotalMS)
	}
	if !strings.HasPrefix(res.URL, "http://one.one.one.one:") {
		t.Errorf("url: got %q", res.URL)
	}

	res, _ = Get(context.Background(), dst, measure.HTTPSpec{Scheme: "http", Path: "/moved", Port: port}, Options{})
	if res.Status != http.StatusFound {
		t.Errorf("redirect: got status %d, want 302 (not followed)", res.Status)
	}
}

func TestGetHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amz-Cf-Pop", "SIN5-C1")
	}))
	defer srv.Close()
	dst, port := addrPort(t, srv.URL)
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	// httptest's certificate names example.com: the SNI/Host we send.
	res, err := Get(context.Background(), dst, measure.HTTPSpec{Host: "example.com", Port: port, Method: "HEAD"}, Options{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || res.TLS == nil || res.TLSMS <= 0 || !strings.HasPrefix(res.TLS.Version, "TLS 1.") {
		t.Fatalf("got %+v tls %+v", res, res.TLS)
	}
	if v, _ := res.Header("x-amz-cf-pop"); v != "SIN5-C1" {
		t.Errorf("got x-amz-cf-pop %q", v)
	}
	found := false
	for _, s := range res.TLS.SANs {
		found = found || s == "example.com"
	}
	if !found {
		t.Errorf("SANs %v lack example.com", res.TLS.SANs)
	}
	// A name the certificate does not carry fails verification, but the
	// certificate's names are still recorded.
	res, _ = Get(context.Background(), dst, measure.HTTPSpec{Host: "cdn.example.net", Port: port}, Options{RootCAs: pool})
	if !strings.HasPrefix(res.Error, "tls: certificate:") || res.Status != 0 || res.TLS == nil || len(res.TLS.SANs) == 0 {
		t.Errorf("wrong name: got error %q status %d tls %+v", res.Error, res.Status, res.TLS)
	}
	res, _ = Get(context.Background(), dst, measure.HTTPSpec{Host: "cdn.example.net", Port: port, Insecure: true}, Options{RootCAs: pool})
	if res.Status != 200 {
		t.Errorf("insecure: got status %d error %q", res.Status, res.Error)
	}
}

func TestGetFailures(t *testing.T) {
	// A port nothing listens on: connection refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	dst, port := addrPort(t, srv.URL)
	srv.Close()
	res, err := Get(context.Background(), dst, measure.HTTPSpec{Scheme: "http", Port: port}, Options{})
	if err != nil || !strings.HasPrefix(res.Error, "connect:") {
		t.Errorf("refused: got %+v, %v", res, err)
	}
	// A server that never answers: timeout within the spec's bound.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	dst, port = addrPort(t, slow.URL)
	start := time.Now()
	res, _ = Get(context.Background(), dst, measure.HTTPSpec{Scheme: "http", Port: port, TimeoutMS: 300}, Options{})
	if res.Error != "timeout" || time.Since(start) > 5*time.Second {
		t.Errorf("hang: got error %q after %s", res.Error, time.Since(start))
	}
}

// FuzzKeepHeaders feeds raw header blocks through the same MIME header
// reader net/http uses and checks what KeepHeaders keeps: lowercase names
// from the allowlist, valid UTF-8 without control characters, within the
// result limits, and a result that validates and encodes.
func FuzzKeepHeaders(f *testing.F) {
	f.Add([]byte("CF-RAY: 838b4de849121c7b-AMS\r\nServer: cloudflare\r\n\r\n"))  // recorded Cloudflare pair
	f.Add([]byte("X-Served-By: cache-lga21984-LGA, cache-pdx12345-PDX\r\n\r\n")) // Fastly with shielding
	f.Add([]byte("x-amz-cf-pop: SIN5-C1\r\nx-amz-cf-pop: GRU3-P7\r\n\r\n"))      // repeated header
	f.Add([]byte("Via: \xff\xfe\x00bad\r\n\r\n"))                                // invalid UTF-8 and NUL
	f.Add([]byte("X-Site: " + strings.Repeat("a", 5000) + "\r\n\r\n"))           // oversized value
	f.Add([]byte("x-site: a\r\nX-Site: b\r\n X-continued\r\n\r\n"))              // folding
	f.Fuzz(func(t *testing.T, raw []byte) {
		mh, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
		if err != nil && len(mh) == 0 {
			return
		}
		h := http.Header(mh)
		kept := KeepHeaders(h, []string{"X-Extra"})
		if len(kept) > measure.MaxHTTPHeaders {
			t.Fatalf("kept %d headers", len(kept))
		}
		for i, x := range kept {
			if x.Name != strings.ToLower(x.Name) || !utf8.ValidString(x.Value) || len(x.Value) > maxHeaderValue {
				t.Fatalf("bad kept header %q", x)
			}
			if i > 0 && kept[i-1].Name >= x.Name {
				t.Fatalf("headers not sorted and unique: %v", kept)
			}
			for _, r := range x.Value {
				if r < 0x20 && r != '\t' {
					t.Fatalf("control character in %q", x.Value)
				}
			}
		}
		now := time.Now()
		r := measure.Result{V: 1, ID: measure.NewUUIDv7(now), Measurement: "m", Kind: measure.KindHTTP, Time: now, Dst: "127.0.0.1", AF: 4,
			HTTP: &measure.HTTPResult{URL: "http://127.0.0.1/", Status: 200, Headers: kept}}
		if err := r.Validate(now); err != nil {
			t.Fatal(err)
		}
	})
}
