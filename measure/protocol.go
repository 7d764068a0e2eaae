package measure

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
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
// ed25519 key over method, path, timestamp and the SHA-256 of the body; the
// collector verifies against the stored public key and refuses timestamps
// outside a skew window, so a captured request cannot be replayed later.
const (
	HeaderProbe     = "X-Anycatch-Probe"
	HeaderTimestamp = "X-Anycatch-Timestamp" // unix seconds
	HeaderSignature = "X-Anycatch-Signature" // base64 (std) ed25519 signature
	MaxClockSkew    = 5 * time.Minute
)

// SigningMessage is the exact byte string a probe signs.
func SigningMessage(method, path string, ts int64, body []byte) []byte {
	h := sha256.Sum256(body)
	return []byte("anycatch-v1\n" + method + "\n" + path + "\n" + strconv.FormatInt(ts, 10) + "\n" + hex.EncodeToString(h[:]))
}

// Sign returns the signature header value for a request.
func Sign(key ed25519.PrivateKey, method, path string, ts int64, body []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, SigningMessage(method, path, ts, body)))
}

// ErrBadSignature is returned by [Verify] for any authentication failure.
var ErrBadSignature = errors.New("bad request signature")

// Verify checks a signed request. tsHeader and sigHeader are the raw header
// values; now bounds the accepted skew.
func Verify(pub ed25519.PublicKey, method, path, tsHeader, sigHeader string, body []byte, now time.Time) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: stored key has wrong size", ErrBadSignature)
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad %s", ErrBadSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("%w: timestamp off by %s (check the probe's clock)", ErrBadSignature, d.Round(time.Second))
	}
	sig, err := base64.StdEncoding.DecodeString(sigHeader)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: malformed %s", ErrBadSignature, HeaderSignature)
	}
	if !ed25519.Verify(pub, SigningMessage(method, path, ts, body), sig) {
		return ErrBadSignature
	}
	return nil
}
