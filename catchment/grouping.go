package catchment

// Entries and how they are grouped: group keys and the indexes that
// number groups and keys.

import (
	"strconv"
	"strings"
	"time"
)

// Entry is one probe's current catchment for a target, with the probe's
// location: the input to the aggregation functions. It is a plain value so
// the API can build it from whatever its store returns.
type Entry struct {
	Probe      string
	State      State
	Site       string // set when State is StateSite
	Identity   string
	RTT        *float64 // ms; nil when unknown
	ObservedAt time.Time
	Country    string // ISO 3166-1 alpha-2
	Continent  string // two-letter code; derived from Country when empty
	ASN        int64
	Lat, Lon   *float64
}

// GroupBy names an aggregation key.
type GroupBy string

const (
	GroupAll       GroupBy = ""          // one group, key "all"
	GroupCountry   GroupBy = "country"   // ISO country code
	GroupContinent GroupBy = "continent" // continent code (from the entry, else from its country)
	GroupASN       GroupBy = "asn"       // "AS64500"
	GroupRegion    GroupBy = "region"    // Regions[country]
	GroupSite      GroupBy = "site"      // the site (or "?identity" / "unreachable")
)

// Unknown is the group key of entries whose group value is not known
// (no country, no ASN, a country outside the region set).
const Unknown = "unknown"

// Grouping says how to group entries. The zero value groups everything
// into one group "all".
type Grouping struct {
	By GroupBy
	// Regions maps upper-case country codes to region names for
	// GroupRegion; countries not in the map fall into [Unknown].
	Regions map[string]string
}

// Key returns the group key of e.
func (g Grouping) Key(e Entry) string {
	var k string
	switch g.By {
	case GroupAll:
		return "all"
	case GroupCountry:
		k = strings.ToUpper(e.Country)
	case GroupContinent:
		k = strings.ToUpper(e.Continent)
		if k == "" {
			k = ContinentOf(e.Country)
		}
	case GroupASN:
		if e.ASN > 0 {
			k = "AS" + strconv.FormatInt(e.ASN, 10)
		}
	case GroupRegion:
		k = g.Regions[strings.ToUpper(e.Country)]
	case GroupSite:
		k = placeOf(e)
	}
	if k == "" {
		return Unknown
	}
	return k
}

// placeOf is where an entry puts its probe, for grouping and counting: the
// site, "?identity" for an unmapped answer ("?" with no identity), or
// "unreachable".
func placeOf(e Entry) string {
	switch e.State {
	case StateSite:
		return e.Site
	case StateUnreachable:
		return string(StateUnreachable)
	}
	return "?" + e.Identity
}

// GroupIndex numbers the groups of entries under a [Grouping]: ID gives
// entries with the same key the same small id, counting from 0, and
// Keys()[id] is the key. Each distinct input of the key (country,
// continent, ASN, place) is turned into a key once, so indexing many
// entries builds few strings. The Grouping's Regions must not change while
// the index is in use.
type GroupIndex struct {
	g    Grouping
	keys KeyIndex
	// What the key was computed from, by grouping: the country (country,
	// region, continent when the entry has none), the continent, the ASN,
	// the site or identity (site).
	byCountry, byContinent, bySite, byIdentity map[string]int32
	byASN                                      map[int64]int32
	fixed                                      int32 // the one id of groupings with a constant key (or of unreachable places); -1 until seen
}

// NewGroupIndex returns an empty index for g.
func NewGroupIndex(g Grouping) *GroupIndex {
	return &GroupIndex{g: g, byCountry: map[string]int32{}, byContinent: map[string]int32{}, bySite: map[string]int32{},
		byIdentity: map[string]int32{}, byASN: map[int64]int32{}, fixed: -1}
}

// ID returns the id of e's group: the id of g.Key(e).
func (x *GroupIndex) ID(e *Entry) int32 {
	switch x.g.By {
	case GroupCountry, GroupRegion:
		return x.cached(x.byCountry, e.Country, e)
	case GroupContinent:
		// A non-empty continent upper-cases to a non-empty key: the
		// country is only read without one.
		if e.Continent != "" {
			return x.cached(x.byContinent, e.Continent, e)
		}
		return x.cached(x.byCountry, e.Country, e)
	case GroupASN:
		id, ok := x.byASN[e.ASN]
		if !ok {
			id = x.keys.ID(x.g.Key(*e))
			x.byASN[e.ASN] = id
		}
		return id
	case GroupSite:
		switch e.State {
		case StateSite:
			return x.cached(x.bySite, e.Site, e)
		case StateUnreachable:
		default:
			return x.cached(x.byIdentity, e.Identity, e)
		}
	}
	// GroupAll, an unknown grouping (Unknown) and unreachable places: a
	// key that depends on nothing else.
	if x.fixed < 0 {
		x.fixed = x.keys.ID(x.g.Key(*e))
	}
	return x.fixed
}

// cached returns the id of e's key, computed from in unless m has it.
func (x *GroupIndex) cached(m map[string]int32, in string, e *Entry) int32 {
	id, ok := m[in]
	if !ok {
		id = x.keys.ID(x.g.Key(*e))
		m[in] = id
	}
	return id
}

// Keys returns the keys by id. The slice is the index's own: do not
// modify it.
func (x *GroupIndex) Keys() []string { return x.keys.keys }

// KeyIndex numbers distinct keys in order of first sight, for
// [LatencyByID]. The zero value is an empty index.
type KeyIndex struct {
	ids  map[string]int32
	keys []string
}

// ID returns k's id, numbering it if it is new.
func (x *KeyIndex) ID(k string) int32 {
	id, ok := x.ids[k]
	if !ok {
		if x.ids == nil {
			x.ids = map[string]int32{}
		}
		id = int32(len(x.keys))
		x.ids[k] = id
		x.keys = append(x.keys, k)
	}
	return id
}

// Keys returns the keys by id. The slice is the index's own: do not
// modify it.
func (x *KeyIndex) Keys() []string { return x.keys }
