package collector

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/geo"
	"github.com/anycatch/anycatch/measure"
)

// CensusStore is what the census endpoints need from the database (the
// service-side catchment census, docs/census.md). A collector without one
// answers those endpoints 404.
type CensusStore interface {
	// EnrollSite consumes a one-time site token and creates the agent.
	// ErrTokenInvalid (wrapped) when the token is unknown or used.
	EnrollSite(ctx context.Context, e SiteEnrollment) error
	// CensusAgent returns an enrolled agent's binding, ErrUnknownProbe
	// when probe is not a site agent.
	CensusAgent(ctx context.Context, probe string) (CensusAgent, error)
	// LiveCensusRounds returns a target's rounds started by now whose late
	// window has not ended, oldest first.
	LiveCensusRounds(ctx context.Context, targetID int, now time.Time) ([]measure.CensusRound, error)
	// IngestCensus stores replies in one transaction; per row whether it
	// was new.
	IngestCensus(ctx context.Context, rows []CensusRow) ([]bool, error)
}

// SiteEnrollment is a site agent enrolling with its site token.
type SiteEnrollment struct {
	TokenHash [32]byte
	ProbeID   string
	PublicKey ed25519.PublicKey
	Version   string
	Src       netip.Addr
	Now       time.Time
}

// CensusAgent is a site agent's binding to a target and site.
type CensusAgent struct {
	TargetID     int
	Target       string
	Site         string
	Addr4, Addr6 string
	Enabled      bool // the target's census opt-in
	MaxPPS       int
}

// CensusRow is one reply to store.
type CensusRow struct {
	Round    int64
	Addr     netip.Addr
	Site     string
	Prefix   netip.Prefix
	RTTMS    *float64
	Sent     time.Time
	Received time.Time
	Late     bool
	Geo      geo.Info
}

// censusRefreshSec is how often agents re-read their census schedule: a
// new round starts within this many seconds.
const censusRefreshSec = 2

// mountCensus adds the site-agent endpoints when a CensusStore is configured.
func (c *Collector) mountCensus(mux *http.ServeMux) {
	if c.cfg.Census == nil {
		return
	}
	mux.HandleFunc("POST "+measure.PathCensusEnroll, c.handleCensusEnroll)
	mux.Handle("GET "+measure.PathCensus, c.authed(RoleSite, 1<<10, c.handleCensusSchedule))
	mux.Handle("POST "+measure.PathCensusReplies, c.authed(RoleSite, c.cfg.MaxBody, c.handleCensusReplies))
}

func (c *Collector) handleCensusEnroll(w http.ResponseWriter, r *http.Request) {
	src := clientAddr(r, c.cfg.TrustedProxies)
	if c.enrollLimited(w, r, src) {
		return
	}
	req, ok := readEnrollRequest(w, r)
	if !ok {
		return
	}
	e := SiteEnrollment{TokenHash: HashToken(req.Token), ProbeID: newProbeID(), PublicKey: ed25519.PublicKey(req.PublicKey),
		Version: req.Version, Src: src, Now: c.cfg.Now().UTC()}
	err := c.cfg.Census.EnrollSite(r.Context(), e)
	switch {
	case errors.Is(err, ErrTokenInvalid):
		c.log.Info("site agent enrollment refused", "src", src, "err", err)
		writeError(w, measure.CodeUnauthorized, errEnrollToken)
		return
	case err != nil:
		c.log.Error("enroll site agent", "err", err)
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "could not enroll now; retry later")
		return
	}
	c.keys.forget(e.ProbeID)
	c.log.Info("site agent enrolled", "probe", e.ProbeID, "src", e.Src)
	writeJSON(w, http.StatusCreated, measure.EnrollResponse{Probe: e.ProbeID})
}

// censusAgent resolves the authenticated caller to a site agent of a
// target with the census enabled, or answers the request itself.
func (c *Collector) censusAgent(w http.ResponseWriter, r *http.Request) (CensusAgent, bool) {
	a, err := c.cfg.Census.CensusAgent(r.Context(), probeFrom(r.Context()))
	switch {
	case errors.Is(err, ErrUnknownProbe):
		writeError(w, measure.CodeForbidden, "not a census site agent")
		return a, false
	case err != nil:
		c.log.Error("census agent lookup", "err", err)
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "census unavailable; retry later")
		return a, false
	case !a.Enabled:
		writeError(w, measure.CodeForbidden, "the census is not enabled for target "+a.Target)
		return a, false
	}
	return a, true
}

func (c *Collector) handleCensusSchedule(w http.ResponseWriter, r *http.Request) {
	a, ok := c.censusAgent(w, r)
	if !ok {
		return
	}
	rounds, err := c.cfg.Census.LiveCensusRounds(r.Context(), a.TargetID, c.cfg.Now())
	if err != nil {
		c.log.Error("census rounds", "err", err)
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "census unavailable; retry later")
		return
	}
	if rounds == nil {
		rounds = []measure.CensusRound{}
	}
	for i := range rounds {
		// Every site checks site tags; only the sender makes MACs, so only
		// it gets the secret (a receiving site then cannot report a reply
		// the round never caused: the collector checks the MAC).
		rounds[i].SiteKey = census.SiteKey(rounds[i].Secret)
		if rounds[i].Sender != a.Site {
			rounds[i].Secret = nil
		}
	}
	writeJSON(w, http.StatusOK, measure.CensusSchedule{Target: a.Target, Site: a.Site, Addr4: a.Addr4, Addr6: a.Addr6,
		MaxPPS: a.MaxPPS, RefreshSec: censusRefreshSec, Rounds: rounds})
}

// censusSkew is how far a reported receive time may lie outside what the
// collector believes possible (clock skew between site and collector).
const censusSkew = measure.MaxClockSkew

func (c *Collector) handleCensusReplies(w http.ResponseWriter, r *http.Request) {
	a, ok := c.censusAgent(w, r)
	if !ok {
		return
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		writeErrorStatus(w, http.StatusUnsupportedMediaType, measure.CodeInvalid, "content-encoding "+shorten(enc)+" not supported (use gzip or none)")
		return
	}
	lines, err := DecodeCensusUpload(bodyFrom(r.Context()), gz, UploadLimits{
		MaxDecompressed: c.cfg.MaxDecompressed, MaxLine: 4 << 10, MaxLines: c.cfg.MaxLines})
	switch {
	case errors.Is(err, ErrUploadTooLarge):
		writeError(w, measure.CodeTooLarge, err.Error()+"; split the upload")
		return
	case err != nil:
		writeError(w, measure.CodeInvalid, err.Error())
		return
	}
	now := c.cfg.Now()
	live, err := c.cfg.Census.LiveCensusRounds(r.Context(), a.TargetID, now)
	if err != nil {
		c.log.Error("census rounds", "err", err)
		writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "census unavailable; retry later")
		return
	}
	rounds := map[int64]measure.CensusRound{}
	for _, rd := range live {
		rounds[rd.ID] = rd
	}
	resp := measure.UploadResponse{Lines: []measure.LineVerdict{}}
	var rows []CensusRow
	var rowLine []int // index into resp.Lines of each row
	for _, l := range lines {
		v := measure.LineVerdict{Line: l.N, ID: l.ID, Verdict: measure.Rejected, Reason: l.Reason}
		if l.Reply != nil {
			row, reason := censusRow(a, rounds, l.Reply, now)
			if reason == "" {
				row.Geo = c.cfg.Geo.Lookup(row.Addr)
				rows = append(rows, row)
				rowLine = append(rowLine, len(resp.Lines))
				v.Verdict, v.Reason = measure.Accepted, ""
			} else {
				v.Reason = reason
			}
		}
		if v.Verdict == measure.Rejected {
			c.metrics.census.WithLabelValues("rejected", reasonClass(v.Reason)).Inc()
		}
		resp.Lines = append(resp.Lines, v)
	}
	if len(rows) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), c.cfg.CommitTimeout)
		inserted, err := c.cfg.Census.IngestCensus(ctx, rows)
		cancel()
		if err != nil {
			c.log.Error("ingest census replies", "site", a.Site, "err", err)
			writeRetry(w, c.cfg.RetryAfter, measure.CodeUnavailable, "could not store replies; retry later")
			return
		}
		for i, ok := range inserted {
			if !ok {
				resp.Lines[rowLine[i]].Verdict = measure.Duplicate
			}
		}
	}
	for _, v := range resp.Lines {
		switch v.Verdict {
		case measure.Accepted:
			resp.Accepted++
		case measure.Duplicate:
			resp.Duplicate++
		default:
			resp.Rejected++
		}
	}
	if resp.Accepted > 0 {
		c.metrics.census.WithLabelValues("accepted", "").Add(float64(resp.Accepted))
	}
	if resp.Duplicate > 0 {
		c.metrics.census.WithLabelValues("duplicate", "").Add(float64(resp.Duplicate))
	}
	if n := countReason(resp.Lines, "mac"); n > 0 {
		c.log.Warn("census replies refused: not probes of the round (bad or missing MAC)", "site", a.Site, "target", a.Target, "replies", n)
	}
	writeJSON(w, http.StatusOK, resp)
}

// censusRow checks one reply against the agent's live rounds and returns
// the row to store, or why it is rejected. A reply received after its
// round closed is kept and marked late; one for a round whose late window
// ended (or that never existed) is rejected.
func censusRow(a CensusAgent, rounds map[int64]measure.CensusRound, rep *measure.CensusReply, now time.Time) (CensusRow, string) {
	rd, ok := rounds[rep.Round]
	if !ok {
		return CensusRow{}, fmt.Sprintf("round %d: not a live census round of target %s", rep.Round, a.Target)
	}
	addr, err := netip.ParseAddr(rep.Addr)
	if err != nil || addr.Zone() != "" {
		return CensusRow{}, "addr: not an IP address"
	}
	addr = addr.Unmap()
	switch {
	case addr.Is4() && a.Addr4 == "", addr.Is6() && a.Addr6 == "":
		return CensusRow{}, "addr: the target has no anycast address of this family"
	case rep.Received.Before(rd.Start.Add(-censusSkew)) || rep.Received.After(now.Add(censusSkew)):
		return CensusRow{}, "received: outside the round and the present"
	case rep.Sent.Before(rd.Start.Add(-censusSkew)) || rep.Sent.After(rep.Received.Add(censusSkew)):
		return CensusRow{}, "sent: outside the round"
	case rep.RTTMS != nil && (a.Site != rd.Sender || *rep.RTTMS < 0 || *rep.RTTMS > 600_000):
		return CensusRow{}, "rtt_ms: only the sender measures RTT, between 0 and 600000 ms"
	}
	bits := rd.Prefix6
	if addr.Is4() {
		bits = rd.Prefix4
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return CensusRow{}, "addr: " + err.Error()
	}
	// The reply must carry the MAC of a probe this round sent to this
	// address (at this transmit time): anything else was never probed.
	mac, err := hex.DecodeString(rep.MAC)
	if err == nil {
		err = census.CheckMAC(rd.Secret, census.Tag{Kind: census.KindICMP, Round: rd.ID, Sent: rep.Sent, Dst: addr}, mac)
	}
	if err != nil {
		return CensusRow{}, "mac: not a probe this round sent to " + addr.String()
	}
	return CensusRow{Round: rd.ID, Addr: addr, Site: a.Site, Prefix: p, RTTMS: rep.RTTMS,
		Sent: rep.Sent.UTC(), Received: rep.Received.UTC(), Late: rep.Received.After(rd.Closes)}, ""
}

// CensusLine is one decoded census upload line: a reply, or why it was
// rejected.
type CensusLine struct {
	N      int
	Reply  *measure.CensusReply
	ID     string
	Reason string
}

// DecodeCensusUpload splits an NDJSON census upload (gzipped when gz) into
// replies. Each line decodes on its own (unknown fields and trailing data
// are errors); the upload fails as a whole only when it cannot be
// decompressed or exceeds the limits.
func DecodeCensusUpload(body []byte, gz bool, lim UploadLimits) ([]CensusLine, error) {
	var src io.Reader = bytes.NewReader(body)
	if gz {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrUploadEncoding, err)
		}
		defer zr.Close()
		src = zr
	}
	lr := &io.LimitedReader{R: src, N: lim.MaxDecompressed + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), lim.MaxLine)
	var out []CensusLine
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(out) >= lim.MaxLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrUploadTooLarge, lim.MaxLines)
		}
		out = append(out, parseCensusLine(n, b))
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrUploadTooLarge, lim.MaxDecompressed)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: line %d longer than %d bytes", ErrUploadTooLarge, n+1, lim.MaxLine)
		}
		return nil, fmt.Errorf("%w: %v", ErrUploadEncoding, err)
	}
	return out, nil
}

func parseCensusLine(n int, b []byte) CensusLine {
	l := CensusLine{N: n}
	var rep measure.CensusReply
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		l.Reason = "json: " + shorten(err.Error())
		return l
	}
	if dec.More() {
		l.Reason = "json: data after the reply"
		return l
	}
	l.ID = rep.ID.String()
	switch {
	case rep.ID.IsZero():
		l.Reason = "id: missing"
	case rep.Round <= 0:
		l.Reason = "round: missing"
	case rep.Sent.IsZero() || rep.Received.IsZero():
		l.Reason = "sent/received: missing"
	default:
		l.Reply = &rep
	}
	return l
}

// reasonClass is the first word of a rejection reason ("mac", "round",
// "json", ...), the label of the census metric.
func reasonClass(reason string) string {
	i := strings.IndexAny(reason, ": ")
	if i < 0 {
		i = len(reason)
	}
	switch c := reason[:i]; c {
	case "mac", "round", "addr", "received", "sent", "rtt_ms", "json", "id", "sent/received":
		return c
	}
	return "other"
}

func countReason(lines []measure.LineVerdict, class string) int {
	n := 0
	for _, l := range lines {
		if l.Verdict == measure.Rejected && reasonClass(l.Reason) == class {
			n++
		}
	}
	return n
}
