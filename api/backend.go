package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// Store is everything the API needs from the database. It is declared here,
// on the consumer side; api/pgstore implements it over package store. Not
// found and conflict are reported as [ErrNotFound] and [ErrConflict].
type Store interface {
	ListTargets(ctx context.Context) ([]Target, error)
	GetTarget(ctx context.Context, name string) (Target, error)
	CreateTarget(ctx context.Context, t Target) (Target, error)
	UpdateTarget(ctx context.Context, t Target) (Target, error)
	DeleteTarget(ctx context.Context, id int) error

	ListSites(ctx context.Context, targetID int) ([]Site, error)
	PutSite(ctx context.Context, targetID int, s Site) error
	DeleteSite(ctx context.Context, targetID int, code string) error
	ListRules(ctx context.Context, targetID int) ([]catchment.Rule, error)
	ReplaceRules(ctx context.Context, targetID int, rules []catchment.Rule) error

	ListProbes(ctx context.Context, f ProbeFilter) ([]ProbeRow, error)
	GetProbe(ctx context.Context, id string) (ProbeRow, error)
	// SetProbeEnabled enables or disables a probe or census site agent;
	// ErrNotFound if there is none. Running collectors learn of it at
	// once (the store notifies them) and close a disabled probe's live
	// channel.
	SetProbeEnabled(ctx context.Context, id string, enabled bool) error

	// Catchment returns one row per (probe, af) track, ordered by probe.
	Catchment(ctx context.Context, q CatchmentQuery) ([]CatchmentRow, error)
	// Latency returns one row per (probe, site); a probe's rows are
	// adjacent.
	Latency(ctx context.Context, q LatencyQuery) ([]LatencyRow, error)
	Changes(ctx context.Context, q ChangeQuery) ([]ChangeRow, error)
	ChangeCounts(ctx context.Context, q ChangeQuery) ([]ProbeChangeCount, []SiteChangeCount, error)
	ChangeTimes(ctx context.Context, q ChangeTimesQuery) ([]ChangeTime, error)
	Unmapped(ctx context.Context, targetID int) ([]UnmappedIdentity, error)
	// StreamResults calls fn for each result matching q in (ts, id) order
	// (the result's Time and ID are its keyset position), at most q.Limit
	// (0: all), and stops early when fn returns an error, which it returns.
	StreamResults(ctx context.Context, q ResultQuery, fn func(*measure.Result) error) error

	KeyByPrefix(ctx context.Context, prefix string) (APIKey, error)
	CreateKey(ctx context.Context, k APIKey) (APIKey, error)
	ListKeys(ctx context.Context) ([]APIKey, error)
	RevokeKey(ctx context.Context, id int64) error
	// TouchKey records that a key was used (at most once a minute per key).
	TouchKey(ctx context.Context, id int64) error
}

// Tokens is the collector's enrollment token service, as the admin
// endpoints use it. A nil Tokens answers those endpoints with unavailable.
type Tokens interface {
	// CreateToken returns the token and its secret, shown once. maxUses 0
	// means unlimited, ttl 0 never expires.
	CreateToken(ctx context.Context, name string, maxUses int, ttl time.Duration) (EnrollmentToken, string, error)
	ListTokens(ctx context.Context) ([]EnrollmentToken, error)
	RevokeToken(ctx context.Context, id int64) error
}

// Target is one anycast service.
type Target = catchment.Target

// Site is one location announcing a target.
type Site = catchment.Site

// ProbeFilter selects probes. Zero fields do not filter. Status is applied
// by the store from ConnectedSince and AbandonedBefore.
type ProbeFilter struct {
	Country         string
	ASN             *int64
	Status          string    // "connected", "disconnected", "abandoned" or ""
	ConnectedSince  time.Time // last_seen at or after: connected
	AbandonedBefore time.Time // last_seen before (or never): abandoned
	After           string    // keyset: probes with id > After
	Limit           int
}

// Probe status thresholds on last_seen: connected when seen within
// ConnectedWithin, disconnected within AbandonedAfter, abandoned after
// that or never seen.
const (
	ConnectedWithin = 10 * time.Minute
	AbandonedAfter  = 7 * 24 * time.Hour
)

// ProbeRow is a probe as stored, with unblurred coordinates.
type ProbeRow struct {
	ID           string
	Origin       string
	Enabled      bool
	ASN          *int64
	ASName       string
	Country      string
	Continent    string
	City         string
	Lat, Lon     *float64 // declared wins over GeoIP; nil when unknown
	Version      string
	Capabilities json.RawMessage
	FirstSeen    time.Time
	LastSeen     *time.Time
}

// CatchmentQuery asks for each probe's catchment state of a target at At.
// When Historical, the state comes from the latest change at or before At;
// otherwise from catchment_latest. Only probes observed within
// [At-Window, At] are returned.
type CatchmentQuery struct {
	TargetID   int
	At         time.Time
	Window     time.Duration
	AF         int // 0 = both
	Historical bool
}

// CatchmentRow is one probe's catchment state with its probe metadata
// (coordinates unblurred).
type CatchmentRow = catchment.Track

// LatencyQuery asks for per-(probe, site) RTT aggregates of one kind over
// [From, To).
type LatencyQuery struct {
	TargetID int
	From, To time.Time
	AF       int
	Kind     measure.Kind
}

// LatencyRow aggregates one probe's results towards one site over a range.
type LatencyRow = catchment.SiteLatency

// ChangeQuery selects catchment changes of a target in [From, To).
type ChangeQuery struct {
	TargetID int
	From, To time.Time
	AF       int
	Probe    string
	// Keyset: changes strictly after (AfterTS, AfterProbe, AfterAF).
	AfterTS    time.Time
	AfterProbe string
	AfterAF    int
	Limit      int
	FlapMin    int // ChangeCounts: only tracks with at least this many changes
	// Desc lists newest first; the keyset then selects changes strictly
	// before the position. A zero AfterTS means no keyset.
	Desc bool
	// MovesOnly leaves out tracks' first observations (from_state NULL).
	MovesOnly bool
}

// ChangeTimesQuery asks for the times a target's catchment changed in
// [From, To), counted per Bucket-long interval (aligned to the Unix epoch).
type ChangeTimesQuery struct {
	TargetID  int
	From, To  time.Time
	AF        int
	Bucket    time.Duration // at least a minute
	MovesOnly bool
	Limit     int // at most this many buckets, earliest first
}

// ChangeTime is one bucket with changes: all of them and the moves among
// them (changes that are not a first observation).
type ChangeTime struct {
	TS      time.Time `json:"ts"`
	Changes int       `json:"changes"`
	Moves   int       `json:"moves"`
}

// ChangeRow is one catchment change.
type ChangeRow struct {
	Probe        string
	AF           int
	TS           time.Time
	FromState    string // "" on a track's first observation
	FromSite     string
	FromIdentity string
	ToState      string
	ToSite       string
	ToIdentity   string
	RTT          *float64
}

// ProbeChangeCount is how many changes one track had in a range (first
// observations excluded).
type ProbeChangeCount struct {
	Probe   string
	AF      int
	Changes int
}

// SiteChangeCount is how many probes moved to (gained) and away from (lost)
// a site in a range.
type SiteChangeCount struct {
	Site   string
	Gained int
	Lost   int
}

// UnmappedIdentity is an identity string no rule maps to a site.
type UnmappedIdentity struct {
	Identity string    `json:"identity"`
	Probes   int       `json:"probes"`
	LastSeen time.Time `json:"last_seen"`
	Source   string    `json:"source,omitempty"` // where the identity came from: the source a rule for it needs
}

// ResultQuery selects raw results of one target in [From, To), in (ts, id)
// order after the keyset position (AfterTS, AfterID).
type ResultQuery struct {
	TargetID int
	Probe    string
	Kind     measure.Kind
	From, To time.Time
	AfterTS  time.Time
	AfterID  measure.UUID
	Limit    int // 0 = no limit (streaming)
}

// APIKey is a stored API key. Hash is sha256 of the whole secret and never
// leaves the server.
type APIKey struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Hash       []byte     `json:"-"`
	Scope      string     `json:"scope"`
	RatePerMin *int       `json:"rate_per_min"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// EnrollmentToken is a probe enrollment token, without its secret.
type EnrollmentToken struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	MaxUses   *int       `json:"max_uses"`
	Uses      int        `json:"uses"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	CreatedAt time.Time  `json:"created_at"`
}
