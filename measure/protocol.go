package measure

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Collector endpoints a probe talks to (relative to the collector URL).
const (
	PathEnroll    = "/probe/v1/enroll"    // POST EnrollRequest -> EnrollResponse (token auth)
	PathSchedule  = "/probe/v1/schedule"  // GET -> Schedule (signed; ETag / If-None-Match)
	PathHeartbeat = "/probe/v1/heartbeat" // POST Heartbeat (signed)
	PathResults   = "/probe/v1/results"   // POST NDJSON of Result, gzip allowed -> UploadResponse (signed)
)

// Schedule is the measurement list a collector hands to one probe.
type Schedule struct {
	Probe        string        `json:"probe"`
	Version      string        `json:"version"`     // equals the ETag
	RefreshSec   int           `json:"refresh_sec"` // how often to re-fetch
	Measurements []Measurement `json:"measurements"`
	MaxPPS       int           `json:"max_pps,omitempty"`      // collector's suggested ceiling; the probe's own ceiling still wins
	UploadEvery  int           `json:"upload_every,omitempty"` // seconds between uploads; 0 means the probe's default
}

// Measurement is one scheduled measurement: run Spec against Address every
// IntervalSec seconds, starting OffsetSec into each interval (spread per
// probe by the collector, deterministic for a (probe, measurement) pair).
type Measurement struct {
	ID          string `json:"id"` // stable; results carry it as "msm"
	Target      string `json:"target"`
	Address     string `json:"address"`
	IntervalSec int    `json:"interval_sec"`
	OffsetSec   int    `json:"offset_sec"`
	Spec        Spec   `json:"spec"`
}

// Capabilities says what a probe can do on its host.
type Capabilities struct {
	Privileged bool   `json:"privileged"` // raw ICMP sockets (CAP_NET_RAW)
	PingMode   string `json:"ping_mode"`  // "raw", "dgram" or "" (none)
	TraceMode  string `json:"trace_mode"` // "raw", "recverr" or ""
	IPv4       bool   `json:"ipv4"`
	IPv6       bool   `json:"ipv6"`
}

// Location is a volunteer-declared position; it wins over GeoIP.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// EnrollRequest is sent once with a one-time enrollment token.
type EnrollRequest struct {
	Token        string       `json:"token"`
	PublicKey    []byte       `json:"public_key"` // ed25519, 32 bytes (base64 in JSON)
	Version      string       `json:"version"`
	Capabilities Capabilities `json:"capabilities"`
	Location     *Location    `json:"location,omitempty"`
}

// EnrollResponse gives the probe its id.
type EnrollResponse struct {
	Probe string `json:"probe"`
}

// Heartbeat reports the probe's state and metadata.
type Heartbeat struct {
	Version      string       `json:"version"`
	Capabilities Capabilities `json:"capabilities"`
	Location     *Location    `json:"location,omitempty"`
	SpoolDepth   int          `json:"spool_depth"`
	Dropped      int64        `json:"dropped"` // results dropped by the spool limit since start
}

// Verdict is the collector's answer for one upload line.
type Verdict string

const (
	Accepted  Verdict = "accepted"
	Duplicate Verdict = "duplicate"
	Rejected  Verdict = "rejected"
)

// LineVerdict is the verdict for one line of an upload (1-based).
type LineVerdict struct {
	Line    int     `json:"line"`
	ID      string  `json:"id,omitempty"`
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason,omitempty"`
}

// UploadResponse answers a results upload. A line is acknowledged
// (accepted or duplicate) only after it is committed; a probe may delete
// acknowledged and rejected lines from its spool and must retry the rest.
type UploadResponse struct {
	Accepted  int           `json:"accepted"`
	Duplicate int           `json:"duplicate"`
	Rejected  int           `json:"rejected"`
	Lines     []LineVerdict `json:"lines"`
}

// Request signing. A probe signs every request after enrollment with its
// ed25519 key over its id, the method, the full request target (path and
// query), a timestamp, a fresh random nonce and the SHA-256 of the body. The
// collector verifies against the stored public key, refuses timestamps
// outside a skew window and refuses a (probe, nonce) pair it has already
// seen inside that window, so a captured request cannot be replayed, nor
// re-targeted at another query string.
//
// [SignRequest] is the only signer and [Verifier] the only verifier; any new
// signed channel (e.g. a WebSocket upgrade) uses the same two.
const (
	HeaderProbe     = "X-Anycatch-Probe"
	HeaderTimestamp = "X-Anycatch-Timestamp" // unix seconds
	HeaderNonce     = "X-Anycatch-Nonce"     // 32 lowercase hex digits, fresh per request
	HeaderSignature = "X-Anycatch-Signature" // base64 (std) ed25519 signature
	MaxClockSkew    = 5 * time.Minute
)

// signingVersion prefixes every signed message; v1 (no nonce, path only)
// is no longer accepted.
const signingVersion = "anycatch-v2"

// SigningMessage is the exact byte string a probe signs. target is the
// request target as the collector routes it: the contract path (e.g.
// [PathResults], without any URL prefix a proxy strips) plus "?" and the
// raw query when there is one.
func SigningMessage(probe, method, target string, ts int64, nonce string, body []byte) []byte {
	h := sha256.Sum256(body)
	return []byte(signingVersion + "\n" + probe + "\n" + method + "\n" + target + "\n" +
		strconv.FormatInt(ts, 10) + "\n" + nonce + "\n" + hex.EncodeToString(h[:]))
}

// Headers is the part of an HTTP header map signing needs; http.Header
// satisfies it. (measure does not import net/http: packages such as atlas
// that use the wire format must not link an HTTP stack.)
type Headers interface {
	Get(key string) string
	Set(key, value string)
}

// SignRequest sets the probe, timestamp, nonce and signature headers of a
// request on h. target is the path and query the collector will see (see
// [SigningMessage]); body is exactly the bytes sent (nil for none). Each
// call draws a new nonce, so a retried request is signed afresh.
func SignRequest(h Headers, key ed25519.PrivateKey, probe, method, target string, body []byte, now time.Time) {
	var n [16]byte
	rand.Read(n[:]) // crypto/rand.Read never fails (Go 1.24+)
	nonce := hex.EncodeToString(n[:])
	ts := now.Unix()
	h.Set(HeaderProbe, probe)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderNonce, nonce)
	h.Set(HeaderSignature, base64.StdEncoding.EncodeToString(ed25519.Sign(key, SigningMessage(probe, method, target, ts, nonce, body))))
}

// RequestTarget returns the target a signature covers for an incoming
// request's URL (r.URL): its escaped path plus "?" and the raw query when
// present.
func RequestTarget(u *url.URL) string {
	t := u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		t += "?" + u.RawQuery
	}
	return t
}

// ErrBadSignature is returned by [Verifier.Verify] for any authentication
// failure; ErrReplay (which wraps it) for a nonce seen before.
var (
	ErrBadSignature = errors.New("bad request signature")
	ErrReplay       = fmt.Errorf("%w: replayed request (nonce already used)", ErrBadSignature)
	// ErrReplayCacheFull means the verifier cannot remember another nonce
	// right now; the request is refused (a retry later succeeds) rather
	// than accepted unchecked.
	ErrReplayCacheFull = errors.New("replay cache full; retry later")
	// ErrTooManyNonces means this probe signed more requests inside the
	// skew window than MaxNoncesPerProbe: it is refused until its older
	// nonces expire, so that one key cannot fill the cache for everyone.
	ErrTooManyNonces = errors.New("too many signed requests from this probe; retry later")
)

// DefaultMaxNonces bounds a [Verifier]'s replay cache when MaxNonces is 0.
// Entries live at most 2*MaxClockSkew; at one request per probe every 5 s
// that is 120 entries per probe, so the default covers ~8000 busy probes.
const DefaultMaxNonces = 1_000_000

// DefaultMaxNoncesPerProbe bounds one probe's share of the replay cache
// when MaxNoncesPerProbe is 0: ~17 signed requests a second sustained over
// the 10-minute window, where an honest probe sends one every few seconds.
const DefaultMaxNoncesPerProbe = 10_000

// Verifier checks signed requests and refuses replays. It remembers every
// accepted (probe, nonce) pair until its timestamp leaves the skew window,
// after which the timestamp check alone refuses it. The zero value is
// ready to use; a Verifier must not be copied after first use. The cache
// is per process: several collectors behind a load balancer each keep
// their own (see docs/security.md).
type Verifier struct {
	MaxNonces         int // replay cache entries; 0 means DefaultMaxNonces
	MaxNoncesPerProbe int // entries of one probe; 0 means DefaultMaxNoncesPerProbe

	mu        sync.Mutex
	seen      map[string]int64 // probe "\x00" nonce -> unix second it expires
	perProbe  map[string]int   // probe -> its entries in seen
	nextSweep int64
}

// Verify checks a signed request against pub: its method, its target
// ([RequestTarget] of r.URL), its headers h (r.Header) and its body
// exactly as read (nil for none); now bounds the accepted skew. The nonce
// is recorded only once the signature is good, so unauthenticated
// requests cannot fill the cache. For an *http.Request r:
//
//	err := v.Verify(pub, r.Method, measure.RequestTarget(r.URL), r.Header, body, time.Now())
func (v *Verifier) Verify(pub ed25519.PublicKey, method, target string, h Headers, body []byte, now time.Time) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: stored key has wrong size", ErrBadSignature)
	}
	probe := h.Get(HeaderProbe)
	ts, err := CheckHeaders(h, now)
	if err != nil {
		return err
	}
	nonce := h.Get(HeaderNonce)
	sig, err := base64.StdEncoding.DecodeString(h.Get(HeaderSignature))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: malformed %s", ErrBadSignature, HeaderSignature)
	}
	if !ed25519.Verify(pub, SigningMessage(probe, method, target, ts, nonce, body), sig) {
		return ErrBadSignature
	}
	return v.remember(probe, nonce, ts+int64(MaxClockSkew/time.Second), now.Unix())
}

// CheckHeaders checks what a signed request's headers alone can show —
// the timestamp within [MaxClockSkew] of now, a well-formed nonce — and
// returns the timestamp. A server calls it before reading a body so that a
// request that can never verify costs no body read; [Verifier.Verify]
// calls it too.
func CheckHeaders(h Headers, now time.Time) (int64, error) {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad %s", ErrBadSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return 0, fmt.Errorf("%w: timestamp off by %s (check the probe's clock)", ErrBadSignature, d.Round(time.Second))
	}
	if !validNonce(h.Get(HeaderNonce)) {
		return 0, fmt.Errorf("%w: missing or malformed %s", ErrBadSignature, HeaderNonce)
	}
	return ts, nil
}

func validNonce(n string) bool {
	if len(n) < 16 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// remember records probe's nonce until expires, or reports a replay.
func (v *Verifier) remember(probe, nonce string, expires, now int64) error {
	key := probe + "\x00" + nonce
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = make(map[string]int64)
		v.perProbe = make(map[string]int)
	}
	if exp, ok := v.seen[key]; ok && exp >= now {
		return ErrReplay
	}
	limit := v.MaxNonces
	if limit <= 0 {
		limit = DefaultMaxNonces
	}
	// Sweep expired entries at most once a second (a sweep per request
	// would let a full cache cost O(n) each); the map never holds more
	// than limit entries.
	if now >= v.nextSweep {
		for k, exp := range v.seen {
			if exp < now {
				delete(v.seen, k)
				p, _, _ := strings.Cut(k, "\x00")
				if v.perProbe[p]--; v.perProbe[p] <= 0 {
					delete(v.perProbe, p)
				}
			}
		}
		v.nextSweep = now + 1
	}
	perProbe := v.MaxNoncesPerProbe
	if perProbe <= 0 {
		perProbe = DefaultMaxNoncesPerProbe
	}
	if v.perProbe[probe] >= perProbe {
		return ErrTooManyNonces
	}
	if len(v.seen) >= limit {
		return ErrReplayCacheFull
	}
	v.seen[key] = expires
	v.perProbe[probe]++
	return nil
}
