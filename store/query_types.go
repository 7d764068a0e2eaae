package store

import (
	"encoding/json"
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// Query types of the read API. Their fields mirror the api package's
// types one for one so the adapter in api/pgstore converts them directly;
// the rows the reports aggregate are package catchment's, shared.

// ProbeFilter selects probes; zero fields do not filter.
type ProbeFilter struct {
	Country         string
	ASN             *int64
	Status          string    // "connected", "disconnected", "abandoned" or ""
	ConnectedSince  time.Time // last_seen at or after: connected
	AbandonedBefore time.Time // last_seen before (or never): abandoned
	After           string    // keyset: id > After
	Limit           int
}

// ProbeRow is a probe with unblurred coordinates (declared wins over GeoIP).
type ProbeRow struct {
	ID           string
	Origin       string
	Enabled      bool
	ASN          *int64
	ASName       string
	Country      string
	Continent    string
	City         string
	Lat, Lon     *float64
	Version      string
	Capabilities json.RawMessage
	FirstSeen    time.Time
	LastSeen     *time.Time
}

// CatchmentQuery asks for each track's state at At (see DB.Catchment).
type CatchmentQuery struct {
	TargetID   int
	At         time.Time
	Window     time.Duration
	AF         int
	Historical bool
}

// CatchmentRow is one track's catchment state with probe metadata
// (the one definition is [catchment.Track]).
type CatchmentRow = catchment.Track

// LatencyQuery asks for per-(probe, site) aggregates of one kind.
type LatencyQuery struct {
	TargetID int
	From, To time.Time
	AF       int
	Kind     measure.Kind
}

// LatencyRow aggregates one probe's results towards one site (the one
// definition is [catchment.SiteLatency]).
type LatencyRow = catchment.SiteLatency

// ChangeQuery selects catchment changes in [From, To) after a keyset
// position; FlapMin is used by ChangeCounts.
type ChangeQuery struct {
	TargetID   int
	From, To   time.Time
	AF         int
	Probe      string
	AfterTS    time.Time
	AfterProbe string
	AfterAF    int
	Limit      int
	FlapMin    int
	Desc       bool // newest first; keyset selects changes before the position
	MovesOnly  bool // leave out first observations
}

// ChangeTimesQuery asks for per-bucket change counts (see DB.ChangeTimes).
type ChangeTimesQuery struct {
	TargetID  int
	From, To  time.Time
	AF        int
	Bucket    time.Duration
	MovesOnly bool
	Limit     int
}

// ChangeTime is one bucket's change count and moves among them.
type ChangeTime struct {
	TS      time.Time
	Changes int
	Moves   int
}

// ChangeRow is one catchment change.
type ChangeRow struct {
	Probe        string
	AF           int
	TS           time.Time
	FromState    string
	FromSite     string
	FromIdentity string
	ToState      string
	ToSite       string
	ToIdentity   string
	RTT          *float64
}

// ProbeChangeCount is the number of changes of one track.
type ProbeChangeCount struct {
	Probe   string
	AF      int
	Changes int
}

// SiteChangeCount is probes gained and lost by a site.
type SiteChangeCount struct {
	Site   string
	Gained int
	Lost   int
}

// UnmappedIdentity is an identity no rule maps, with the probes seeing it.
type UnmappedIdentity struct {
	Identity string
	Probes   int
	LastSeen time.Time
	Source   string // where the identity came from ("hostname_bind", "http_header:x-pop", …); "" when unknown
}

// ResultQuery selects raw results (see DB.StreamResults and DB.ResultPage).
type ResultQuery struct {
	TargetID int
	Probe    string
	Kind     measure.Kind
	From, To time.Time
	AfterTS  time.Time
	AfterID  measure.UUID
	Limit    int
}

// APIKey is a stored API key (hash only, never the secret).
type APIKey struct {
	ID         int64
	Name       string
	Prefix     string
	Hash       []byte
	Scope      string
	RatePerMin *int
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}
