package collector

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/measure"
)

// Store is everything the collector needs from the database.
type Store interface {
	TargetStore
	ProbeStore
	TokenStore
	// IngestBatch stores rows in one transaction and reports, per row,
	// whether it was inserted (false: an identical key was already stored).
	// On error nothing was committed; an error wrapping ErrRowData says
	// the rows' content was refused (the same rows fail again, a subset
	// without the offending row commits), any other error is transient.
	IngestBatch(ctx context.Context, rows []Row) ([]bool, error)
}

// TargetStore lists what probes measure.
type TargetStore interface {
	// EnabledTargets returns every enabled target with its site rules.
	EnabledTargets(ctx context.Context) ([]Target, error)
}

// ProbeStore reads and writes probes.
type ProbeStore interface {
	// ProbeKey returns a probe's public key and status, or ErrUnknownProbe.
	ProbeKey(ctx context.Context, id string) (ProbeKey, error)
	// Enroll consumes one use of the token with hash e.TokenHash and
	// creates the probe, atomically, after checking the Sybil limits.
	// Errors: ErrTokenInvalid (wrapped, with the reason), ErrProbeLimit.
	Enroll(ctx context.Context, e Enrollment) error
	// Heartbeat records a probe's report and where it was seen from.
	Heartbeat(ctx context.Context, h HeartbeatUpdate) error
}

// TokenStore manages enrollment tokens.
type TokenStore interface {
	CreateToken(ctx context.Context, t NewToken) (Token, error)
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks a token revoked; ErrUnknownToken if there is none.
	RevokeToken(ctx context.Context, id int64, at time.Time) error
}

// Errors a Store returns (wrapped or not) for the collector to map to
// HTTP statuses.
var (
	ErrUnknownProbe = errors.New("unknown probe")
	ErrUnknownToken = errors.New("unknown enrollment token")
	ErrTokenInvalid = errors.New("enrollment token not usable")
	ErrProbeLimit   = errors.New("probe limit reached")
	// ErrRowData: the database refused a value in the batch.
	ErrRowData = errors.New("database refused a value")
)

// Target is one enabled target with its site rules in order, as the
// collector sees it.
type Target struct {
	catchment.Target
	Rules []catchment.Rule
}

// Row is one validated result ready to store.
type Row struct {
	TargetID int
	Result   *measure.Result // Probe and Target set by the collector
	RTT      *float64        // representative RTT, ms
	Loss     *float64        // ping loss fraction 0..1
	State    catchment.State // identity-bearing results only (see catchment.ObservationFromResult)
	Site     string
	Identity string
	Source   string // evidence that named Site
}

// ProbeKey is what authentication needs to know about a probe.
type ProbeKey struct {
	PublicKey ed25519.PublicKey
	Disabled  bool
	Role      Role // which endpoints the key may use; the zero Role none
}

// Role is what a key is for. Each signed endpoint serves one role and
// refuses the other's keys with 403: a site agent's key cannot fetch a
// schedule, upload results, send heartbeats or hold a live channel, and a
// probe's key cannot use the census endpoints.
type Role string

const (
	RoleProbe Role = "probe" // volunteer probe: schedule, results, heartbeat, live channel
	RoleSite  Role = "site"  // census site agent: census schedule and replies
)

// Limits caps enrolled probes per network location (Sybil resistance).
// Zero means the default; negative means unlimited.
type Limits struct {
	PerAddr   int // probes per source address; default 4
	Per64     int // probes per IPv6 /64; default 8
	PerPrefix int // probes per announced prefix (from the ASN database); default 64
}

func (l Limits) withDefaults() Limits {
	if l.PerAddr == 0 {
		l.PerAddr = 4
	}
	if l.Per64 == 0 {
		l.Per64 = 8
	}
	if l.PerPrefix == 0 {
		l.PerPrefix = 64
	}
	return l
}

// Enrollment is one enrollment to record.
type Enrollment struct {
	TokenHash    [32]byte // sha256 of the presented token
	ProbeID      string
	PublicKey    ed25519.PublicKey
	Version      string
	Capabilities measure.Capabilities
	Location     *measure.Location
	Src          netip.Addr
	Geo          geo.Info
	Limits       Limits // resolved: no zeros; negative = unlimited
	Now          time.Time
}

// HeartbeatUpdate is one heartbeat to record.
type HeartbeatUpdate struct {
	ProbeID   string
	Heartbeat measure.Heartbeat
	Src       netip.Addr
	Geo       geo.Info
	Now       time.Time
}

// NewToken is a token to create; the store keeps only the hash.
type NewToken struct {
	Name      string
	Hash      [32]byte
	MaxUses   int        // 0 = unlimited
	ExpiresAt *time.Time // nil = never
}

// Token describes a stored enrollment token (never its secret).
type Token struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	MaxUses   int        `json:"max_uses,omitempty"` // 0 = unlimited
	Uses      int        `json:"uses"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}
