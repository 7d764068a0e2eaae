package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// Probe is a probe as published: coordinates blurred, status derived from
// last_seen (see [ConnectedWithin] and [AbandonedAfter]).
type Probe struct {
	ID           string          `json:"id"`
	Origin       string          `json:"origin"`
	Status       string          `json:"status"`
	Enabled      bool            `json:"enabled"`
	ASN          *int64          `json:"asn"`
	ASName       string          `json:"as_name"`
	Country      string          `json:"country"`
	Continent    string          `json:"continent"`
	City         string          `json:"city"`
	Lat          *float64        `json:"lat"`
	Lon          *float64        `json:"lon"`
	Version      string          `json:"version"`
	Capabilities json.RawMessage `json:"capabilities"`
	FirstSeen    time.Time       `json:"first_seen"`
	LastSeen     *time.Time      `json:"last_seen"`
}

// probeStatus classifies a probe by when it was last seen.
func probeStatus(lastSeen *time.Time, now time.Time) string {
	switch {
	case lastSeen == nil || now.Sub(*lastSeen) >= AbandonedAfter:
		return "abandoned"
	case now.Sub(*lastSeen) >= ConnectedWithin:
		return "disconnected"
	}
	return "connected"
}

func (s *Server) blur(probe string, lat, lon *float64) (*float64, *float64) {
	if lat == nil || lon == nil {
		return nil, nil
	}
	a, b := s.cfg.Blur(probe, *lat, *lon)
	return &a, &b
}

func (s *Server) publicProbe(p ProbeRow, now time.Time) Probe {
	caps := p.Capabilities
	if len(caps) == 0 {
		caps = json.RawMessage("{}")
	}
	out := Probe{ID: p.ID, Origin: p.Origin, Status: probeStatus(p.LastSeen, now), Enabled: p.Enabled,
		ASN: p.ASN, ASName: p.ASName, Country: p.Country, Continent: p.Continent, City: p.City,
		Version: p.Version, Capabilities: caps, FirstSeen: p.FirstSeen, LastSeen: p.LastSeen}
	out.Lat, out.Lon = s.blur(p.ID, p.Lat, p.Lon)
	return out
}

func (s *Server) listProbes(r *http.Request) (any, error) {
	q := newQuery(r)
	now := s.now()
	f := ProbeFilter{ConnectedSince: now.Add(-ConnectedWithin), AbandonedBefore: now.Add(-AbandonedAfter)}
	if c := q.str("country"); c != "" {
		if !countryRE.MatchString(c) {
			q.fail("country", "want a two-letter ISO 3166-1 country code")
		}
		f.Country = strings.ToUpper(c)
	}
	if a := q.str("asn"); a != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(a), "AS"), 10, 64)
		if err != nil || n <= 0 || n > 1<<32-1 {
			q.fail("asn", "want an AS number like 64500")
		}
		f.ASN = &n
	}
	f.Status = q.enum("status", "", "connected", "disconnected", "abandoned")
	f.Limit = q.limit()
	var cur struct {
		After string `json:"a"`
	}
	if q.cursor(&cur) {
		f.After = cur.After
	}
	if q.err != nil {
		return nil, q.err
	}
	// One extra row tells whether there is a next page.
	limit := f.Limit
	f.Limit++
	rows, err := s.store.ListProbes(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := list[Probe]{Data: []Probe{}}
	for i, p := range rows {
		if i == limit {
			cur.After = rows[i-1].ID
			out.NextCursor = encodeCursor(cur)
			break
		}
		out.Data = append(out.Data, s.publicProbe(p, now))
	}
	return out, nil
}

func (s *Server) getProbe(r *http.Request) (any, error) {
	id := chi.URLParam(r, "probe")
	if !probeIDRE.MatchString(id) {
		return nil, invalid("probe", "not a probe id")
	}
	p, err := s.store.GetProbe(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("probe " + id)
	}
	if err != nil {
		return nil, err
	}
	return s.publicProbe(p, s.now()), nil
}

// probePatch is the body of PATCH /probes/{probe}.
type probePatch struct {
	Enabled *bool `json:"enabled"`
}

// patchProbe enables or disables a probe or census site agent (admin).
// A disabled probe's signed requests get 403 and its live channel closes
// at once, which also takes it out of on-demand selection.
func (s *Server) patchProbe(r *http.Request) (any, error) {
	id := chi.URLParam(r, "probe")
	if !probeIDRE.MatchString(id) {
		return nil, invalid("probe", "not a probe id")
	}
	var in probePatch
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if in.Enabled == nil {
		return nil, invalid("enabled", "missing: the only field a probe has to change")
	}
	err := s.store.SetProbeEnabled(r.Context(), id, *in.Enabled)
	var p ProbeRow
	if err == nil {
		p, err = s.store.GetProbe(r.Context(), id)
	}
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("probe " + id)
	}
	if err != nil {
		return nil, err
	}
	return s.publicProbe(p, s.now()), nil
}
