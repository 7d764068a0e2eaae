package store

import (
	"time"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// ResultRow is one result ready to store: the wire result plus what the
// collector derived from it (its target, identification outcome, RTT).
type ResultRow struct {
	TargetID int
	Result   *measure.Result // Probe must be set
	RTT      *float64        // representative RTT in ms
	Loss     *float64        // ping loss fraction 0..1
	State    catchment.State // identification outcome for dns/identity/http/ntp results and mapped traces; "" for others
	Site     string
	Identity string
	Source   string // evidence that named Site ("hostname_bind", "http_header:cf-ray", "trace_hop", …)
}

// Target is one anycast service and what to measure on it.
type Target struct {
	ID            int            `json:"id"`
	Name          string         `json:"name"`
	Description   string         `json:"description"`
	Addr4         string         `json:"addr4,omitempty"`
	Addr6         string         `json:"addr6,omitempty"`
	IntervalSec   int            `json:"interval_sec"`
	Specs         []measure.Spec `json:"specs"`
	IdentityOrder []string       `json:"identity_order"` // of "hostname_bind", "id_server", "nsid"
	Enabled       bool           `json:"enabled"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// Site is one location announcing a target's anycast prefix.
type Site struct {
	TargetID int      `json:"-"`
	Code     string   `json:"code"`
	Name     string   `json:"name"`
	Lat      *float64 `json:"lat,omitempty"`
	Lon      *float64 `json:"lon,omitempty"`
	Unicast4 string   `json:"unicast4,omitempty"`
	Unicast6 string   `json:"unicast6,omitempty"`
}
