package alert

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Errors callers map to statuses (the API: 404, 409, 400).
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// Kind is what a rule watches.
type Kind string

const (
	// KindShareChange: a site's share of the target's probes differs by
	// more than Threshold percentage points from its share one Window
	// ago, and at least MinProbes probes moved to or from it within the
	// Window (change events; enrolling probes do not count). It needs a
	// whole Window of history. Subject: the site.
	KindShareChange Kind = "share_change"
	// KindSiteLost: a site that had at least MinProbes probes within
	// Window has none now. Subject: the site. It resolves when the site
	// has probes again.
	KindSiteLost Kind = "site_lost"
	// KindUnreachable: more than Threshold percent of the probes get no
	// answer (and at least MinProbes of them).
	KindUnreachable Kind = "unreachable_share"
	// KindUnidentified: more than Threshold percent of the probes are
	// answered by an identity no rule maps (and at least MinProbes).
	KindUnidentified Kind = "unidentified_share"
	// KindBurst: more than Threshold probes moved between places within
	// Window.
	KindBurst Kind = "burst"
	// KindFlap: more than Threshold probes changed place at least
	// FlapChanges times within Window.
	KindFlap Kind = "flap"
	// KindRegionFlap: in one region (a country, continent or ASN, chosen
	// by Region), more than Threshold of the region's probes changed
	// place at least FlapChanges times within Window (and at least
	// MinProbes of them). Subject: the region, e.g. "country:DE".
	KindRegionFlap Kind = "region_flap"
	// KindSpeedOfLight: more than Threshold (probe, site) pairs of the
	// last Window had results faster than light in fibre allows between
	// the probe and the site (catchment.Impossible): a wrong identity
	// rule or a wrong location. Checked at the slow cadence (see
	// alert/service).
	KindSpeedOfLight Kind = "speed_of_light"
	// KindInflation: more than Threshold probes of the last Window have an
	// inflated anycast RTT (catchment.Inflation, from the result
	// rollups). Checked at the slow cadence.
	KindInflation Kind = "inflation"
)

// Regions a region_flap rule groups probes by.
const (
	RegionCountry   = "country"
	RegionContinent = "continent"
	RegionASN       = "asn"
)

// ProbeRegion is where a probe is, for region_flap rules; empty fields are
// unknown (such probes belong to no region of that kind).
type ProbeRegion struct {
	Country   string
	Continent string
	ASN       int64
}

// key is the probe's region of the given kind as a subject ("country:DE",
// "continent:EU", "asn:AS64500"), or "" when unknown.
func (p ProbeRegion) key(kind string) string {
	switch {
	case kind == RegionCountry && p.Country != "":
		return "country:" + p.Country
	case kind == RegionContinent && p.Continent != "":
		return "continent:" + p.Continent
	case kind == RegionASN && p.ASN > 0:
		return fmt.Sprintf("asn:AS%d", p.ASN)
	}
	return ""
}

// Finding is one item a periodic check counts: an impossible (probe,
// site) pair for speed_of_light, an inflated probe for inflation.
type Finding struct {
	AF     int
	Key    string  // "probe" or "probe>site"
	Weight float64 // how bad: the sample lists the heaviest first
	Detail string  // a short human-readable line for the payload sample
}

// Kinds lists every rule kind, for validation messages and the API.
var Kinds = []Kind{KindShareChange, KindSiteLost, KindUnreachable, KindUnidentified, KindBurst, KindFlap,
	KindRegionFlap, KindSpeedOfLight, KindInflation}

// Rule defaults and limits.
const (
	DefaultWindowSec   = 300
	DefaultResolveSec  = 60
	DefaultMinProbes   = 2
	DefaultFlapChanges = 3
	MaxWindowSec       = 6 * 3600 // the evaluator keeps this much history in memory
	// MinCheckWindowSec is the shortest window of speed_of_light and
	// inflation rules: their checks run every few minutes.
	MinCheckWindowSec = 600
	// DefaultCheckWindowSec is their default window: an hour, the
	// resolution of the result rollups the inflation check reads.
	DefaultCheckWindowSec = 3600
)

// Rule is one alert rule of a target. Zero values of the optional fields
// take the defaults in [Rule.Defaults].
type Rule struct {
	ID       int64  `json:"id"`
	TargetID int    `json:"-"`
	Target   string `json:"target"` // target name
	Name     string `json:"name"`
	Kind     Kind   `json:"kind"`
	// AF is 4 or 6, or 0 for both families, each evaluated on its own.
	AF int `json:"af"`
	// Threshold is in percentage points for the share kinds, in probes
	// for burst, flap, region_flap and inflation, and in (probe, site)
	// pairs for speed_of_light; site_lost ignores it.
	Threshold float64 `json:"threshold"`
	// Clear is the hysteresis band: a firing alert only counts as clear
	// once its value is at or below Clear. 0 means 0.75 x Threshold.
	Clear float64 `json:"clear"`
	// WindowSec is the look-back window; 0 means 300.
	WindowSec int `json:"window_sec"`
	// ForSec is how long the condition must hold before the alert fires;
	// 0 fires on the first evaluation that sees it.
	ForSec int `json:"for_sec"`
	// ResolveSec is how long the condition must stay clear before a firing
	// alert resolves, so a condition that flickers stays one alert; 0
	// means 60, negative resolves at once.
	ResolveSec int `json:"resolve_sec"`
	// MinProbes is the fewest probes an alert may be about, so one noisy
	// probe does not page anyone; 0 means 2.
	MinProbes int `json:"min_probes"`
	// FlapChanges is, for flap rules, the changes within Window that make
	// a probe flapping; 0 means 3.
	FlapChanges int `json:"flap_changes"`
	// Region is, for region_flap rules, what a region is: "country",
	// "continent" or "asn". Other kinds must leave it empty.
	Region    string    `json:"region,omitempty"`
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
}

// Defaults fills the zero optional fields.
func (r *Rule) Defaults() {
	if r.WindowSec == 0 {
		r.WindowSec = DefaultWindowSec
		if r.Kind == KindSpeedOfLight || r.Kind == KindInflation {
			r.WindowSec = DefaultCheckWindowSec
		}
	}
	if r.ResolveSec == 0 {
		r.ResolveSec = DefaultResolveSec
	}
	if r.MinProbes == 0 {
		r.MinProbes = DefaultMinProbes
	}
	if r.FlapChanges == 0 {
		r.FlapChanges = DefaultFlapChanges
	}
	if r.Clear == 0 {
		r.Clear = 0.75 * r.Threshold
	}
	if r.Name == "" {
		r.Name = string(r.Kind)
	}
}

// Validate reports the first problem of a rule (after Defaults), wrapping
// ErrInvalid.
func (r *Rule) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("alert rule: %s: %w", fmt.Sprintf(format, a...), ErrInvalid)
	}
	known := false
	for _, k := range Kinds {
		known = known || r.Kind == k
	}
	switch {
	case !known:
		return bad("unknown kind %q (want one of %v)", r.Kind, Kinds)
	case r.AF != 0 && r.AF != 4 && r.AF != 6:
		return bad("af %d (want 0, 4 or 6)", r.AF)
	case math.IsNaN(r.Threshold) || math.IsNaN(r.Clear) || r.Threshold < 0 || r.Clear < 0:
		return bad("threshold and clear must be numbers >= 0")
	case r.Clear > r.Threshold:
		return bad("clear %g above threshold %g (clear is the lower end of the hysteresis band)", r.Clear, r.Threshold)
	case r.WindowSec < 10 || r.WindowSec > MaxWindowSec:
		return bad("window_sec %d (want 10..%d)", r.WindowSec, MaxWindowSec)
	case r.ForSec < 0 || r.ForSec > MaxWindowSec:
		return bad("for_sec %d (want 0..%d)", r.ForSec, MaxWindowSec)
	case r.ResolveSec > MaxWindowSec:
		return bad("resolve_sec %d (want at most %d)", r.ResolveSec, MaxWindowSec)
	case r.MinProbes < 1 || r.FlapChanges < 2:
		return bad("min_probes must be >= 1 and flap_changes >= 2")
	case len(r.Name) > 100 || strings.ContainsFunc(r.Name, func(c rune) bool { return c < 0x20 || c == 0x7f }):
		return bad("name too long or with control characters")
	}
	switch {
	case r.Kind == KindRegionFlap && r.Region != RegionCountry && r.Region != RegionContinent && r.Region != RegionASN:
		return bad("region_flap region %q (want %s, %s or %s)", r.Region, RegionCountry, RegionContinent, RegionASN)
	case r.Kind != KindRegionFlap && r.Region != "":
		return bad("region %q is only for region_flap rules", r.Region)
	case (r.Kind == KindSpeedOfLight || r.Kind == KindInflation) && r.WindowSec < MinCheckWindowSec:
		// The checks read rollups by the hour and run every few
		// minutes: a shorter window would see nothing or stale data.
		return bad("%s window_sec %d (want at least %d)", r.Kind, r.WindowSec, MinCheckWindowSec)
	}
	switch r.Kind {
	case KindShareChange, KindUnreachable, KindUnidentified:
		if r.Threshold <= 0 || r.Threshold > 100 {
			return bad("%s threshold %g (want percentage points in (0, 100])", r.Kind, r.Threshold)
		}
	}
	return nil
}

func (r Rule) window() time.Duration { return time.Duration(r.WindowSec) * time.Second }

// Status of an alert or of a notification about it.
type Status string

const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
	StatusTest     Status = "test" // a "send test" notification
)

// SiteShare is one site's probes and share before (at the start of the
// rule's window) and after (now).
type SiteShare struct {
	Site         string  `json:"site"`
	BeforeProbes int     `json:"before_probes"`
	AfterProbes  int     `json:"after_probes"`
	BeforeShare  float64 `json:"before_share"` // percent of the probes observed
	AfterShare   float64 `json:"after_share"`
}

// Alert is one firing or resolved alert: a rule's condition on one subject
// (a site, or "" for target-wide kinds) and address family.
type Alert struct {
	ID         int64       `json:"id"`
	RuleID     int64       `json:"rule_id"`
	RuleName   string      `json:"rule"`
	Kind       Kind        `json:"kind"`
	TargetID   int         `json:"-"`
	Target     string      `json:"target"`
	AF         int         `json:"af"`
	Subject    string      `json:"subject"`
	Status     Status      `json:"status"`
	StartedAt  time.Time   `json:"started_at"`
	ResolvedAt *time.Time  `json:"resolved_at,omitempty"`
	Value      float64     `json:"value"`     // the watched value when it fired
	Threshold  float64     `json:"threshold"` // the rule's threshold then
	Summary    string      `json:"summary"`
	Sites      []SiteShare `json:"sites"`
	Probes     []string    `json:"probes"` // a sample of the probes concerned (at most 20)
}

// AlertQuery filters an alert listing; zero fields do not filter.
type AlertQuery struct {
	Target string
	Status Status
	Limit  int // 0 means 100
}

// Webhook is an admin-configured notification endpoint.
type Webhook struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
	// Secret is the HMAC key; shown only when the endpoint is created.
	Secret string `json:"secret,omitempty"`
	// AllowPrivate lets this endpoint resolve to loopback, private or
	// other special addresses (refused by default against SSRF).
	AllowPrivate bool `json:"allow_private"`
	// Target limits the endpoint to one target's alerts; "" means all.
	Target string `json:"target,omitempty"`
	// MaxAttempts bounds deliveries of one notification; 0 means 5.
	MaxAttempts int       `json:"max_attempts"`
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
}

// Validate checks a webhook's fields, wrapping ErrInvalid.
func (w *Webhook) Validate() error {
	if w.MaxAttempts == 0 {
		w.MaxAttempts = 5
	}
	u, err := url.Parse(w.URL)
	switch {
	case err != nil:
		return fmt.Errorf("webhook url: %v: %w", err, ErrInvalid)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("webhook url %q: want an absolute http or https URL: %w", w.URL, ErrInvalid)
	case u.User != nil:
		return fmt.Errorf("webhook url: credentials in the URL are not allowed (they would be logged): %w", ErrInvalid)
	case w.MaxAttempts < 1 || w.MaxAttempts > 20:
		return fmt.Errorf("webhook max_attempts %d (want 1..20): %w", w.MaxAttempts, ErrInvalid)
	case len(w.Name) > 100:
		return fmt.Errorf("webhook name too long: %w", ErrInvalid)
	}
	return nil
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one notification to one webhook and how sending it went:
// the per-endpoint delivery log.
type Delivery struct {
	ID          int64      `json:"id"`
	WebhookID   int64      `json:"webhook_id"`
	AlertID     *int64     `json:"alert_id,omitempty"`
	Event       Status     `json:"event"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	LastStatus  int        `json:"last_status,omitempty"` // HTTP status of the last attempt, 0 when none
	LastError   string     `json:"last_error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	// Payload is the body sent, kept so retries survive a restart; the
	// API does not show it.
	Payload []byte `json:"-"`
}
