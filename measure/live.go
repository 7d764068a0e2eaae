package measure

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PathLive is the live channel: a WebSocket a running probe holds open to
// its collector. The upgrade request is signed like every other probe
// request (method GET, this path, empty body); the collector then sends a
// fresh random challenge which the probe must sign (see [LiveProof]) before
// anything else is exchanged, so a captured handshake cannot be replayed.
const PathLive = "/probe/v1/live"

// LiveSubprotocol is the WebSocket subprotocol both ends must agree on.
const LiveSubprotocol = "anycatch-live-v1"

// Live message types. Collector to probe: LiveChallenge, LiveWelcome,
// LiveSchedule, LiveNudge. Probe to collector: LiveAuth, LiveRefused.
const (
	LiveChallenge = "challenge" // Nonce: sign it (LiveProof) and answer with LiveAuth
	LiveAuth      = "auth"      // Probe, Proof: the signed challenge
	LiveWelcome   = "welcome"   // authenticated; Version: the collector's current schedule version
	LiveSchedule  = "schedule"  // the schedule changed; Version: the new one (fetch it from PathSchedule)
	LiveNudge     = "nudge"     // measure now: Measurements (ids from the schedule) once, out of turn; Request names an on-demand measurement
	LiveRefused   = "refused"   // probe: it will not run Measurements of nudge Request, and why (Reason)
	LiveAdhoc     = "adhoc"     // run Adhoc (measurements not in the schedule, ids AdhocID) once, now, for on-demand Request
)

// AdhocPrefix starts the id of every ad-hoc measurement: an on-demand
// measurement of an address that is no registered target. The full id is
// AdhocID(request, kind, af); the collector accepts results under such an
// id only from the probes it asked, for that address, while the request
// runs (plus a grace period).
const AdhocPrefix = "adhoc/"

// MaxAdhoc bounds the measurements one LiveAdhoc message may carry (kinds
// times address families); a probe refuses the rest.
const MaxAdhoc = 8

// AdhocKinds are the kinds an ad-hoc measurement may run: the collector
// offers only these and the probe refuses any other itself. http and ntp
// reach services nobody should point a volunteer at on demand; only
// scheduled measurements use them.
var AdhocKinds = []Kind{KindIdentity, KindPing, KindTrace, KindDNS}

// IsAdhocID reports whether id names an ad-hoc measurement. Scheduled ids
// are target/kind/af (three segments; a target name holds no slash), so a
// target that happens to be called "adhoc" keeps its ordinary ids.
func IsAdhocID(id string) bool {
	rest, ok := strings.CutPrefix(id, AdhocPrefix)
	return ok && strings.Count(rest, "/") == 2
}

// AdhocID names the ad-hoc measurement of kind over address family af of
// on-demand request.
func AdhocID(request string, kind Kind, af int) string {
	return fmt.Sprintf("%s%s/%s/%d", AdhocPrefix, request, kind, af)
}

// LiveMessage is one JSON text frame on the live channel. Unused fields are
// omitted; a receiver ignores message types it does not know so either end
// can be upgraded first.
type LiveMessage struct {
	Type         string        `json:"type"`
	Nonce        string        `json:"nonce,omitempty"`        // challenge: base64 of 32 random bytes
	Probe        string        `json:"probe,omitempty"`        // auth
	Proof        string        `json:"proof,omitempty"`        // auth: base64 ed25519 signature
	Version      string        `json:"version,omitempty"`      // welcome, schedule
	Measurements []string      `json:"measurements,omitempty"` // nudge: measurement ids
	Reason       string        `json:"reason,omitempty"`       // nudge: why (e.g. "confirm catchment change"); refused: the probe's reason
	Request      string        `json:"request,omitempty"`      // nudge, refused, adhoc: the on-demand measurement id, if any
	Adhoc        []Measurement `json:"adhoc,omitempty"`        // adhoc: what to run (IntervalSec and OffsetSec unused)
}

// On-demand measurement states and per-probe outcomes, as the API reports
// them.
const (
	OnDemandRunning = "running"
	OnDemandDone    = "done"

	OutcomeResult  = "result"  // Result holds the stored result
	OutcomeRefused = "refused" // the probe's own policy refused it (Reason)
	OutcomeOffline = "offline" // the probe holds no live channel: not asked
	OutcomeTimeout = "timeout" // asked, but no result before the deadline
)

// OnDemandEvent is one probe's outcome for one measurement of an
// on-demand request: a stored result, or why there is none.
type OnDemandEvent struct {
	Seq         int       `json:"seq"` // 1-based position in the request's event list
	At          time.Time `json:"at"`
	Probe       string    `json:"probe"`
	Measurement string    `json:"msm,omitempty"`
	Outcome     string    `json:"outcome"`
	Reason      string    `json:"reason,omitempty"`
	Result      *Result   `json:"result,omitempty"`
}

// OnDemandStatus describes an on-demand request.
type OnDemandStatus struct {
	ID           string          `json:"id"`
	Status       string          `json:"status"`              // OnDemandRunning or OnDemandDone
	Target       string          `json:"target"`              // registered target; "" for an ad-hoc address
	Address      string          `json:"address,omitempty"`   // ad-hoc: the address or hostname asked for
	Addresses    []string        `json:"addresses,omitempty"` // ad-hoc: the IP addresses measured (one per family)
	Measurements []string        `json:"measurements"`        // measurement ids run (scheduled ones, or ad-hoc ids)
	Probes       []string        `json:"probes"`              // selected probes
	Created      time.Time       `json:"created"`
	Deadline     time.Time       `json:"deadline"`
	Events       []OnDemandEvent `json:"events,omitempty"`
}

// MaxLiveMessage bounds one live frame in either direction.
const MaxLiveMessage = 64 << 10

// liveProofMessage is what a probe signs to answer a challenge. It names
// the probe and the purpose so the signature cannot be reused as a request
// signature (those start with "anycatch-v1").
func liveProofMessage(probe, nonce string) []byte {
	return []byte("anycatch-live-v1\n" + probe + "\n" + nonce)
}

// LiveProof signs a collector's challenge nonce for probe.
func LiveProof(key ed25519.PrivateKey, probe, nonce string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, liveProofMessage(probe, nonce)))
}

// VerifyLiveProof checks a probe's answer to the challenge nonce the
// collector sent on this connection.
func VerifyLiveProof(pub ed25519.PublicKey, probe, nonce, proof string) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: stored key has wrong size", ErrBadSignature)
	}
	if nonce == "" {
		return errors.New("live proof: empty challenge")
	}
	sig, err := base64.StdEncoding.DecodeString(proof)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: malformed live proof", ErrBadSignature)
	}
	if !ed25519.Verify(pub, liveProofMessage(probe, nonce), sig) {
		return ErrBadSignature
	}
	return nil
}
