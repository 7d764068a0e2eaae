package store

import (
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

// Target is one anycast service (the one definition is
// [catchment.Target], validated there).
type Target = catchment.Target

// Site is one location announcing a target's anycast prefix
// ([catchment.Site]).
type Site = catchment.Site
