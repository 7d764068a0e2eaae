// Package webhook delivers alert notifications to HTTP endpoints: a JSON
// body signed with HMAC-SHA256 over "<timestamp>.<delivery>.<event>.<body>",
// retried with
// exponential backoff, with bounded timeouts and a guard that refuses
// endpoints resolving to loopback, private or other special addresses
// (SSRF) unless the endpoint is explicitly allowed to.
//
// Receivers verify a notification by recomputing
// hex(HMAC-SHA256(secret, X-Anycatch-Timestamp + "." + X-Anycatch-Delivery +
// "." + X-Anycatch-Event + "." + body)) and comparing
// it with the X-Anycatch-Signature header ("sha256=<hex>") in constant
// time, and should refuse timestamps more than a few minutes old (replay).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/anycatch/anycatch/measure"
)

// Headers of a notification.
const (
	HeaderSignature = "X-Anycatch-Signature" // "sha256=" + hex HMAC
	HeaderTimestamp = "X-Anycatch-Timestamp" // Unix seconds, part of the signed text
	HeaderEvent     = "X-Anycatch-Event"     // firing, resolved or test
	HeaderDelivery  = "X-Anycatch-Delivery"  // delivery id, the same on every retry
)

// Sign returns the signature header value of body sent at ts as delivery
// id with event: the HMAC covers the timestamp, delivery and event headers
// as sent, each followed by a dot, then the body.
func Sign(secret []byte, ts, delivery int64, event string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10) + "." + strconv.FormatInt(delivery, 10) + "." + event + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Options tunes a [Sender]. The zero value is usable.
type Options struct {
	// Timeout bounds one attempt (connect, send, response headers and
	// up to 64 KiB of body). 0 means 10 s.
	Timeout time.Duration
	// BaseDelay is the wait before the second attempt; each further wait
	// doubles, up to MaxDelay. 0 means 2 s and 5 min.
	BaseDelay, MaxDelay time.Duration
	// AllowPrivate lets every endpoint reach special addresses (the
	// server's --webhook-allow-private); per endpoint, see [Request].
	AllowPrivate bool
	// Now and Sleep replace the clock in tests. nil means the real ones;
	// Sleep must return early with ctx's error when ctx ends.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Transport replaces the dialing transport in tests (the address
	// guard then does not apply). nil means a guarded transport.
	Transport http.RoundTripper
}

// Sender sends notifications. It is safe for concurrent use.
type Sender struct {
	opt     Options
	guarded *http.Client // refuses special addresses
	open    *http.Client // for endpoints allowed to reach them
}

// New returns a sender.
func New(opt Options) *Sender {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.BaseDelay <= 0 {
		opt.BaseDelay = 2 * time.Second
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = 5 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Sleep == nil {
		opt.Sleep = sleep
	}
	s := &Sender{opt: opt}
	s.guarded = s.client(!opt.AllowPrivate)
	s.open = s.client(false)
	return s
}

func (s *Sender) client(guard bool) *http.Client {
	rt := s.opt.Transport
	if rt == nil {
		d := &net.Dialer{Timeout: s.opt.Timeout}
		if guard {
			// Control runs for every address actually dialed, after DNS
			// resolution: a name that resolves (or re-resolves) to an
			// internal address is refused, not only literal addresses.
			d.Control = func(network, address string, _ syscall.RawConn) error {
				return CheckAddr(address)
			}
		}
		rt = &http.Transport{
			Proxy:                 nil, // an environment proxy would bypass the guard
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   s.opt.Timeout,
			ResponseHeaderTimeout: s.opt.Timeout,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
		}
	}
	return &http.Client{
		Transport: rt,
		Timeout:   s.opt.Timeout,
		// A redirect could point at an internal address or drop the
		// signature's meaning; the first answer is the answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ErrForbiddenAddress is returned for endpoints resolving to addresses the
// guard refuses.
var ErrForbiddenAddress = errors.New("address not allowed for webhooks (loopback, private, link-local or special); allow it explicitly on the endpoint or with --webhook-allow-private")

// stricter are ranges the guard refuses on top of measure.SpecialRange
// (the one table of special-purpose ranges, which also judges the IPv4
// address embedded in NAT64 and IPv4-mapped forms): a webhook has no
// business going through a NAT64 translator at all, nor to the IETF
// protocol assignments block.
var stricter = []netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2001::/23"),
}

// CheckAddr reports whether host:port (an IP literal, as dialers see it)
// is a public unicast address a webhook may reach.
func CheckAddr(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook address %q: %w", host, ErrForbiddenAddress)
	}
	ip = ip.Unmap().WithZone("")
	bad := !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() ||
		ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast()
	if _, _, special := measure.SpecialRange(ip); special {
		bad = true
	}
	for _, p := range stricter {
		bad = bad || p.Contains(ip)
	}
	if bad {
		return fmt.Errorf("webhook address %s: %w", ip, ErrForbiddenAddress)
	}
	return nil
}

// Request is one notification to one endpoint.
type Request struct {
	URL          string
	Secret       []byte
	AllowPrivate bool // this endpoint may reach special addresses
	Event        string
	DeliveryID   int64
	Body         []byte // JSON
	MaxAttempts  int    // 0 means 5
	// PriorAttempts were made before (by a server that stopped while
	// retrying): numbering continues after them and they count toward
	// MaxAttempts. At least one attempt is always made.
	PriorAttempts int
}

// Attempt is the outcome of one try, reported as it happens so the caller
// can keep the delivery log current.
type Attempt struct {
	N        int           // 1-based
	At       time.Time     // when it was sent
	Status   int           // HTTP status, 0 when there was no answer
	Err      string        // why it failed; "" on success
	Duration time.Duration // how long it took
	Final    bool          // no further attempt follows (success, permanent failure or out of attempts)
	OK       bool
}

// Deliver sends r until an endpoint answers 2xx, the answer is permanent
// (a 4xx other than 408 and 429, or a refused address), MaxAttempts are
// used, or ctx ends; record (may be nil) sees every attempt. It returns
// nil on success and otherwise the last attempt's error.
func (s *Sender) Deliver(ctx context.Context, r Request, record func(Attempt)) error {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 5
	}
	delay := s.opt.BaseDelay
	for range min(r.PriorAttempts, 30) {
		delay = min(2*delay, s.opt.MaxDelay)
	}
	for n := r.PriorAttempts + 1; ; n++ {
		a, permanent := s.try(ctx, r, n)
		a.Final = a.OK || permanent || n >= r.MaxAttempts
		if !a.Final {
			// Waiting is part of the attempt: if ctx ends during the
			// wait, this is the last record.
			if err := s.opt.Sleep(ctx, delay); err != nil {
				a.Final = true
				a.Err += fmt.Sprintf("; gave up: %v", err)
			}
			delay = min(2*delay, s.opt.MaxDelay)
		} else if !a.OK && n >= r.MaxAttempts && !permanent {
			a.Err += fmt.Sprintf("; gave up after %d attempts", n)
		}
		if record != nil {
			record(a)
		}
		if a.OK {
			return nil
		}
		if a.Final {
			return errors.New(a.Err)
		}
	}
}

func (s *Sender) try(ctx context.Context, r Request, n int) (a Attempt, permanent bool) {
	a, permanent = s.try1(ctx, r, n)
	a.Err = Sanitize(a.Err)
	return a, permanent
}

// maxErr caps an attempt's error text (it is stored as last_error).
const maxErr = 200

// Sanitize makes text from a receiver safe to store and show: invalid
// UTF-8 and control characters (NUL included) become "?", and the result
// is cut to at most 200 bytes on a rune boundary.
func Sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > maxErr {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Sender) try1(ctx context.Context, r Request, n int) (a Attempt, permanent bool) {
	a = Attempt{N: n, At: s.opt.Now()}
	ts := a.At.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		a.Err = fmt.Sprintf("build request: %v", err)
		return a, true
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "anycatch-webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(r.Secret, ts, r.DeliveryID, r.Event, r.Body))
	req.Header.Set(HeaderEvent, r.Event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(r.DeliveryID, 10))
	c := s.guarded
	if r.AllowPrivate {
		c = s.open
	}
	start := time.Now()
	resp, err := c.Do(req)
	a.Duration = time.Since(start)
	if err != nil {
		a.Err = fmt.Sprintf("attempt %d: %v", n, err)
		return a, errors.Is(err, ErrForbiddenAddress)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.Status = resp.StatusCode
	switch {
	case resp.StatusCode/100 == 2:
		a.OK = true
		return a, false
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		a.Err = fmt.Sprintf("attempt %d: receiver answered %s", n, resp.Status)
		return a, false
	}
	a.Err = fmt.Sprintf("attempt %d: receiver answered %s (not retried)", n, resp.Status)
	return a, true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
