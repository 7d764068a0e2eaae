package measure

import "time"

// Census endpoints an anycatch-site agent talks to. Agents hold the same
// kind of ed25519 identity as probes and sign requests the same way; the
// collector binds each to one target and site (see docs/census.md).
const (
	PathCensusEnroll  = "/probe/v1/census/enroll"  // POST EnrollRequest with a site token -> EnrollResponse
	PathCensus        = "/probe/v1/census"         // GET -> CensusSchedule (signed)
	PathCensusReplies = "/probe/v1/census/replies" // POST NDJSON of CensusReply, gzip allowed -> UploadResponse (signed)
)

// CensusSchedule tells a site agent who it is and which census rounds are
// live: open rounds and closed rounds whose late window has not ended.
type CensusSchedule struct {
	Target     string        `json:"target"`
	Site       string        `json:"site"`
	Addr4      string        `json:"addr4,omitempty"` // the anycast addresses replies arrive at
	Addr6      string        `json:"addr6,omitempty"`
	MaxPPS     int           `json:"max_pps"` // the target's ceiling set by the admin
	RefreshSec int           `json:"refresh_sec"`
	Rounds     []CensusRound `json:"rounds"`
}

// CensusRound is one census measurement: Sender transmits to the hitlist
// named Hitlist (a file in each sender's hitlist directory) at RatePPS
// between Start and Closes; every site reports replies until LateUntil.
// Replies after Closes are reported and counted as late.
type CensusRound struct {
	ID      int64  `json:"id"`
	Sender  string `json:"sender"`
	Hitlist string `json:"hitlist"`
	RatePPS int    `json:"rate_pps"`
	Prefix4 int    `json:"prefix4"` // census prefix lengths: 24 and 48 unless the round says
	Prefix6 int    `json:"prefix6"`
	// Secret is the key of the sender's MAC (base64 in JSON): only the
	// round's sender gets it. SiteKey (derived from it) checks the site
	// tag every probe carries: every site gets it.
	Secret    []byte    `json:"secret,omitempty"`
	SiteKey   []byte    `json:"site_key"`
	Start     time.Time `json:"start"`
	Closes    time.Time `json:"closes"`
	LateUntil time.Time `json:"late_until"`
}

// CensusReply is one echo reply a site received (one NDJSON line).
type CensusReply struct {
	ID       UUID      `json:"id"` // agent-generated, for at-least-once delivery
	Round    int64     `json:"round"`
	Addr     string    `json:"addr"`             // the replying address (a hitlist address)
	Sent     time.Time `json:"sent"`             // transmit time from the payload
	Received time.Time `json:"received"`         // when this site received it
	RTTMS    *float64  `json:"rtt_ms,omitempty"` // only when this site is the round's sender (same clock)
	// MAC is the sender's MAC the reply carried, in hex: the collector
	// checks it against the round's secret and refuses replies without a
	// valid one (a site cannot make it, so it cannot report an address
	// the round did not probe).
	MAC string `json:"mac"`
}
