// Package upload is the probe's HTTP client for the collector: enrollment
// with a one-time token, then signed requests (see [measure.Sign]) to fetch
// the schedule with ETag revalidation, send heartbeats and upload result
// batches as (gzipped) NDJSON, returning per-line verdicts.
//
// Errors from the collector are [*StatusError] values carrying the status
// and any Retry-After; [Retryable] says whether trying again later can
// help. Every request has a deadline.
package upload

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// HTTPClient sends requests; nil means a client with dial, TLS and
	// response-header timeouts. Its Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds each request, body included; 0 means 30 s.
	Timeout time.Duration
	// Now is the clock used for request timestamps; nil means time.Now.
	Now func() time.Time
	// UserAgent is sent on every request; "" means "anycatch-probe".
	UserAgent string
	// GzipMin is the upload size from which bodies are gzipped; 0 means
	// 1 KiB, negative disables compression.
	GzipMin int
}

// Client talks to one collector on behalf of one identity.
type Client struct {
	base *url.URL
	id   *Identity
	opt  Options
	hc   *http.Client
}

// MaxResponseBytes bounds what is read from any collector response.
const MaxResponseBytes = 4 << 20

// New returns a client for the collector at collector (an http or https
// URL, possibly with a path prefix). id must hold a key; its Probe must be
// set (by [Client.Enroll]'s caller) before signed calls.
func New(collector string, id *Identity, opt Options) (*Client, error) {
	u, err := url.Parse(collector)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("collector URL %q: want http(s)://host[:port][/prefix]", collector)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.UserAgent == "" {
		opt.UserAgent = "anycatch-probe"
	}
	if opt.GzipMin == 0 {
		opt.GzipMin = 1 << 10
	}
	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}}
	}
	return &Client{base: u, id: id, opt: opt, hc: hc}, nil
}

// StatusError is a non-success answer from the collector.
type StatusError struct {
	Op         string        // "enroll", "schedule", "heartbeat", "upload"
	StatusCode int           // HTTP status
	RetryAfter time.Duration // from Retry-After; 0 if absent
	Message    string        // start of the response body
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: collector answered %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// ErrNotModified is returned by FetchSchedule when the collector's schedule
// still matches the ETag given.
var ErrNotModified = errors.New("schedule not modified")

// Retryable reports whether err is worth retrying later unchanged: network
// failures, timeouts, 408, 429 and 5xx. Other 4xx answers are not.
func Retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode == http.StatusRequestTimeout || se.StatusCode == http.StatusTooManyRequests || se.StatusCode >= 500
	}
	return err != nil && !errors.Is(err, context.Canceled)
}

// RetryAfter returns the collector's Retry-After from err, if it gave one.
func RetryAfter(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// Enroll registers the identity's public key using a one-time token. The
// caller stores the returned probe id in the identity and saves it.
func (c *Client) Enroll(ctx context.Context, req measure.EnrollRequest) (measure.EnrollResponse, error) {
	var resp measure.EnrollResponse
	if len(req.PublicKey) == 0 {
		req.PublicKey = c.id.PublicKey()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("enroll: %w", err)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	res, err := c.do(ctx, "enroll", http.MethodPost, measure.PathEnroll, hdr, body, false)
	if err != nil {
		return resp, err
	}
	if err := decodeJSON(res, &resp); err != nil {
		return resp, fmt.Errorf("enroll: %w", err)
	}
	if resp.Probe == "" {
		return resp, errors.New("enroll: collector returned no probe id")
	}
	return resp, nil
}

// FetchSchedule gets the probe's schedule, sending etag as If-None-Match.
// It returns [ErrNotModified] on 304, else the schedule and its ETag.
func (c *Client) FetchSchedule(ctx context.Context, etag string) (*measure.Schedule, string, error) {
	hdr := http.Header{}
	if etag != "" {
		hdr.Set("If-None-Match", etag)
	}
	res, err := c.do(ctx, "schedule", http.MethodGet, measure.PathSchedule, hdr, nil, true)
	if err != nil {
		return nil, "", err
	}
	if res.status == http.StatusNotModified {
		return nil, etag, ErrNotModified
	}
	var s measure.Schedule
	if err := decodeJSON(res, &s); err != nil {
		return nil, "", fmt.Errorf("schedule: %w", err)
	}
	tag := res.header.Get("ETag")
	if tag == "" && s.Version != "" {
		tag = strconv.Quote(s.Version)
	}
	return &s, tag, nil
}

// Heartbeat reports the probe's state.
func (c *Client) Heartbeat(ctx context.Context, hb measure.Heartbeat) error {
	body, err := json.Marshal(hb)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	_, err = c.do(ctx, "heartbeat", http.MethodPost, measure.PathHeartbeat, http.Header{"Content-Type": {"application/json"}}, body, true)
	return err
}

// Upload sends results, each one JSON line without its newline, and returns
// the collector's verdicts. Line numbers in the answer are 1-based indexes
// into lines.
func (c *Client) Upload(ctx context.Context, lines [][]byte) (*measure.UploadResponse, error) {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	raw := make([]byte, 0, n)
	for _, l := range lines {
		raw = append(append(raw, l...), '\n')
	}
	hdr := http.Header{"Content-Type": {"application/x-ndjson"}}
	body := raw
	if c.opt.GzipMin > 0 && len(raw) >= c.opt.GzipMin {
		var buf bytes.Buffer
		buf.Grow(len(raw) / 4)
		zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("upload: gzip: %w", err)
		}
		body = buf.Bytes()
		hdr.Set("Content-Encoding", "gzip")
	}
	res, err := c.do(ctx, "upload", http.MethodPost, measure.PathResults, hdr, body, true)
	if err != nil {
		return nil, err
	}
	var ur measure.UploadResponse
	if err := decodeJSON(res, &ur); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	return &ur, nil
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func decodeJSON(res *response, v any) error {
	if err := json.Unmarshal(res.body, v); err != nil {
		return fmt.Errorf("decode collector answer: %w", err)
	}
	return nil
}

// do sends one request with a deadline. signed requests carry the probe
// id, a timestamp, a fresh nonce and a signature over the contract path
// (not any URL prefix; path may carry a query, which is signed too) and
// the body exactly as sent.
func (c *Client) do(ctx context.Context, op, method, path string, hdr http.Header, body []byte, signed bool) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	u := *c.base
	p, q, _ := strings.Cut(path, "?")
	u.Path += p
	u.RawQuery = q
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.opt.UserAgent)
	req.Header.Set("Accept", "application/json")
	if signed {
		if c.id.Probe == "" {
			return nil, fmt.Errorf("%s: probe is not enrolled", op)
		}
		for k, v := range c.signedHeader(method, path, body) {
			req.Header[k] = v
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", op, err)
	}
	if len(b) > MaxResponseBytes {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", op, MaxResponseBytes)
	}
	if resp.StatusCode == http.StatusNotModified || resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 256 {
		msg = msg[:256] + "…"
	}
	return nil, &StatusError{Op: op, StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.opt.Now()), Message: msg}
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}
