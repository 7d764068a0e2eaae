// Package site is the anycatch-site agent: it runs at each anycast site
// of a target, enrolls with the collector like a probe (same ed25519
// identity and signed requests, but bound by its site token to one target
// and site), and takes part in census rounds (the Verfploeter method, see
// docs/census.md): the round's sender transmits ICMP echo requests from
// the anycast address to a hitlist; every site captures the echo replies
// that BGP routes to it and reports them, spooled on disk first, through
// the collector's census ingest.
//
// It links no database driver, HTTP router, GeoIP reader or web assets
// (internal/archtest checks).
package site

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/anycatch/anycatch/census"
	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/spool"
	"github.com/anycatch/anycatch/probe/upload"
)

// Version is reported at enrollment.
var Version = "dev"

// Config configures an agent. Collector and StateDir are required; the
// zero value of every other field is a working default.
type Config struct {
	Collector   string // collector URL
	StateDir    string // identity, spool and round records
	EnrollToken string // one-time site token; needed only until enrolled
	// HitlistDir holds the hitlist files rounds name (a sender reads
	// HitlistDir/NAME). "" means StateDir/hitlists.
	HitlistDir string
	// OptOut is a file of addresses and prefixes never probed, re-read at
	// every round; "" means none.
	OptOut string
	// MaxPPS is this site's own send-rate ceiling, below the round's and
	// the target's; 0 means census.DefaultPPS. Never above
	// census.HardMaxPPS.
	MaxPPS int
	// Note is appended to the clear text of every probe payload (a
	// contact address or URL for the networks probed).
	Note string
	// Netns opens the raw sockets inside this network namespace
	// (/run/netns/NAME) while the agent talks to the collector from its
	// own; "" means the agent's own namespace.
	Netns string
	// UploadEvery is the pause between uploads of spooled replies; 0
	// means 2 s.
	UploadEvery time.Duration
	Logger      *slog.Logger // nil: slog.Default()
	HTTPTimeout time.Duration

	// listen opens the socket for an address; nil means raw sockets.
	listen func(addr netip.Addr) (conn, error)
	now    func() time.Time
}

func (c *Config) defaults() error {
	if c.Collector == "" || c.StateDir == "" {
		return errors.New("site agent: collector URL and state directory are required")
	}
	if c.HitlistDir == "" {
		c.HitlistDir = filepath.Join(c.StateDir, "hitlists")
	}
	if c.MaxPPS <= 0 {
		c.MaxPPS = census.DefaultPPS
	}
	c.MaxPPS = min(c.MaxPPS, census.HardMaxPPS)
	if len(c.Note) > census.MaxNoteLen {
		return fmt.Errorf("site agent: note longer than %d bytes", census.MaxNoteLen)
	}
	if c.UploadEvery <= 0 {
		c.UploadEvery = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.listen == nil {
		ns := c.Netns
		c.listen = func(a netip.Addr) (conn, error) { return listenRaw(a, ns) }
	}
	if c.now == nil {
		c.now = time.Now
	}
	return nil
}

// agent is one running site agent.
type agent struct {
	cfg    Config
	log    *slog.Logger
	client *upload.Client
	sp     *spool.Spool

	mu      sync.Mutex
	sched   *measure.CensusSchedule
	rounds  map[int64]measure.CensusRound
	conns   map[bool]conn // by v6
	sending map[int64]bool

	replies chan measure.CensusReply
	icmpID  int

	// pending holds replies of rounds this agent has not heard of yet
	// (the sender polled the schedule first): they are checked again
	// after the next schedule and dropped after pendingTTL.
	pending []pendingReply
}

// pendingReply is a captured census reply whose round is not known yet.
type pendingReply struct {
	payload  []byte
	from     netip.Addr
	received time.Time
}

const (
	maxPending = 100_000
	pendingTTL = 30 * time.Second
	// SenderDelay is how long after a round's start its sender waits
	// before the first probe, so that every site has polled the schedule
	// (every 2 s) and knows the round when replies arrive.
	SenderDelay = 3 * time.Second
)

// Run enrolls if needed and runs the agent until ctx ends. Replies
// captured before ctx ended are in the spool; the next run uploads them.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "rounds"), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	client, err := enroll(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the collector
		}
		return err
	}
	sp, err := spool.Open(filepath.Join(cfg.StateDir, "spool"), spool.Options{})
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	defer sp.Close()
	a := &agent{cfg: cfg, log: cfg.Logger, client: client, sp: sp, rounds: map[int64]measure.CensusRound{},
		conns: map[bool]conn{}, sending: map[int64]bool{}, replies: make(chan measure.CensusReply, 4096),
		icmpID: rand.IntN(1 << 16)}
	defer a.closeConns()

	var wg sync.WaitGroup
	spooled := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); a.uploadLoop(ctx) }()
	go func() { defer close(spooled); a.spoolLoop() }()
	go a.scheduleLoop(ctx, &wg) // calls wg.Done
	<-ctx.Done()
	a.closeConns() // ends the receive loops
	wg.Wait()
	close(a.replies)
	<-spooled
	return nil
}

// enroll loads the identity from the state directory, enrolling with the
// site token when it has none yet.
func enroll(ctx context.Context, cfg Config) (*upload.Client, error) {
	path := filepath.Join(cfg.StateDir, "identity.json")
	id, err := upload.LoadIdentity(path)
	if errors.Is(err, os.ErrNotExist) {
		id, err = upload.NewIdentity(cfg.Collector, time.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	client, err := upload.New(cfg.Collector, id, upload.Options{UserAgent: "anycatch-site/" + Version, Timeout: cfg.HTTPTimeout})
	if err != nil {
		return nil, err
	}
	if id.Probe != "" {
		return client, nil
	}
	if cfg.EnrollToken == "" {
		return nil, errors.New("enroll: not enrolled yet and no site token given (--enroll-token)")
	}
	for {
		var er measure.EnrollResponse
		err := client.Call(ctx, "enroll", "POST", measure.PathCensusEnroll, false,
			measure.EnrollRequest{Token: cfg.EnrollToken, PublicKey: id.PublicKey(), Version: Version}, nil, &er)
		if err == nil {
			id.Probe, id.Enrolled = er.Probe, time.Now().UTC()
			if err := id.Save(path); err != nil {
				return nil, fmt.Errorf("save identity: %w", err)
			}
			cfg.Logger.Info("enrolled as site agent", "agent", er.Probe)
			return client, nil
		}
		if !upload.Retryable(err) {
			return nil, err
		}
		cfg.Logger.Warn("enroll failed; retrying", "err", err)
		if sleep(ctx, 2*time.Second) != nil {
			return nil, ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// scheduleLoop fetches the census schedule, opens the sockets once the
// anycast addresses are known, and starts sending rounds this site sends.
// Goroutines it starts are added to wg.
func (a *agent) scheduleLoop(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	refresh := 2 * time.Second
	for {
		var s measure.CensusSchedule
		err := a.client.Call(ctx, "census schedule", "GET", measure.PathCensus, true, nil, nil, &s)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("census schedule", "err", err)
		} else {
			if s.RefreshSec > 0 {
				refresh = time.Duration(s.RefreshSec) * time.Second
			}
			a.apply(ctx, &s, wg)
		}
		if sleep(ctx, refresh) != nil {
			return
		}
	}
}

func (a *agent) apply(ctx context.Context, s *measure.CensusSchedule, wg *sync.WaitGroup) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sched = s
	// Rounds stay known until their late window ends (the schedule drops
	// them then): replies after the round closed still count.
	a.rounds = map[int64]measure.CensusRound{}
	for _, r := range s.Rounds {
		a.rounds[r.ID] = r
	}
	// Replies that arrived before this site knew their round.
	var keep []pendingReply
	for _, p := range a.pending {
		if a.handleLocked(p.payload, p.from, p.received) == errUnknownRound && a.cfg.now().Sub(p.received) < pendingTTL {
			keep = append(keep, p)
		}
	}
	a.pending = keep
	for v6, addr := range map[bool]string{false: s.Addr4, true: s.Addr6} {
		if addr == "" || a.conns[v6] != nil || ctx.Err() != nil {
			continue
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			a.log.Error("census schedule: bad anycast address", "addr", addr)
			continue
		}
		c, err := a.cfg.listen(ip)
		if err != nil {
			a.log.Error("open capture socket", "err", err)
			continue
		}
		a.conns[v6] = c
		a.log.Info("capturing census replies", "addr", ip)
		wg.Add(1)
		go func() { defer wg.Done(); a.receive(c, v6) }()
	}
	now := a.cfg.now()
	for _, r := range s.Rounds {
		if r.Sender != s.Site || a.sending[r.ID] || !now.Before(r.Closes) || a.roundDone(r.ID) {
			continue
		}
		a.sending[r.ID] = true
		wg.Add(1)
		go func() { defer wg.Done(); a.send(ctx, r, s.MaxPPS) }()
	}
}

func (a *agent) closeConns() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		c.Close()
	}
}

func (a *agent) roundPath(id int64) string {
	return filepath.Join(a.cfg.StateDir, "rounds", fmt.Sprintf("%d.json", id))
}

func (a *agent) roundDone(id int64) bool {
	_, err := os.Stat(a.roundPath(id))
	return err == nil
}

// RoundStats is what a sender records in StateDir/rounds/ID.json when it
// has sent a round (also logged): how many probes went out and how fast.
type RoundStats struct {
	Round         int64     `json:"round"`
	Hitlist       string    `json:"hitlist"`
	Listed        int       `json:"listed"`     // addresses kept from the hitlist
	OptedOut      int       `json:"opted_out"`  // dropped by the opt-out list
	Duplicates    int       `json:"duplicates"` // dropped: prefix already listed
	Sent          int       `json:"sent"`
	SendErrors    int       `json:"send_errors"`
	NoFamily      int       `json:"no_family"` // addresses of a family the target has no anycast address for
	ConfiguredPPS int       `json:"configured_pps"`
	MeasuredPPS   float64   `json:"measured_pps"` // (sent-1) / (last send - first send)
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
	Cut           bool      `json:"cut"` // the round closed before the hitlist was done
}

// send transmits one round: every hitlist address not opted out, paced by
// a token bucket at the lowest of the round's, the target's and this
// site's ceilings, and never past the round's close.
func (a *agent) send(ctx context.Context, r measure.CensusRound, targetMax int) {
	st, err := a.sendRound(ctx, r, targetMax)
	if err != nil {
		a.log.Error("census round not sent", "round", r.ID, "err", err)
		a.mu.Lock()
		delete(a.sending, r.ID) // the next schedule retries while the round is open
		a.mu.Unlock()
		return
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := upload.WriteFileAtomic(a.roundPath(r.ID), b, 0o600); err != nil {
		a.log.Error("record round", "round", r.ID, "err", err)
	}
	a.log.Info("census round sent", "round", r.ID, "sent", st.Sent, "opted_out", st.OptedOut,
		"configured_pps", st.ConfiguredPPS, "measured_pps", fmt.Sprintf("%.1f", st.MeasuredPPS), "cut", st.Cut)
}

func (a *agent) sendRound(ctx context.Context, r measure.CensusRound, targetMax int) (*RoundStats, error) {
	if len(r.Secret) == 0 {
		return nil, errors.New("the schedule names this site the sender but gives no round secret")
	}
	var opt *census.OptOut
	if a.cfg.OptOut != "" {
		f, err := os.Open(a.cfg.OptOut)
		if err != nil {
			return nil, fmt.Errorf("opt-out list: %w", err)
		}
		opt, err = census.ParseOptOut(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	path := filepath.Join(a.cfg.HitlistDir, filepath.Base(r.Hitlist))
	// scan streams the hitlist (it can hold millions of addresses): once
	// to check every line before the first probe, once to send.
	scan := func(fn func(netip.Addr) error) (census.HitlistStats, error) {
		f, err := os.Open(path)
		if err != nil {
			return census.HitlistStats{}, fmt.Errorf("hitlist %s: %w", r.Hitlist, err)
		}
		defer f.Close()
		return census.ScanHitlist(f, r.Prefix4, r.Prefix6, opt, fn)
	}
	h, err := scan(nil)
	if err != nil {
		return nil, err
	}
	// The round's rate within the target's ceiling, then this site's.
	rate := r.RatePPS
	if targetMax > 0 {
		rate = min(rate, targetMax)
	}
	rate = census.EffectivePPS(rate, a.cfg.MaxPPS)
	st := &RoundStats{Round: r.ID, Hitlist: r.Hitlist, Listed: h.Listed, OptedOut: h.OptedOut, Duplicates: h.Duplicates,
		ConfiguredPPS: rate, Started: a.cfg.now()}
	if err := sleep(ctx, time.Until(r.Start.Add(SenderDelay))); err != nil {
		return nil, err
	}
	// Up to 10 ms of sends may go back to back to make up for late
	// wake-ups; the average from the first send never exceeds rate.
	pacer := census.NewPacer(rate, max(1, rate/100), nil, nil)
	a.mu.Lock()
	conns := map[bool]conn{false: a.conns[false], true: a.conns[true]}
	a.mu.Unlock()
	var first, last time.Time
	errCut := errors.New("round closed")
	seq := 0
	_, err = scan(func(dst netip.Addr) error {
		c := conns[dst.Is6()]
		if c == nil {
			st.NoFamily++
			return nil
		}
		if err := pacer.Wait(ctx); err != nil {
			return err
		}
		now := time.Now()
		if !now.Before(r.Closes) {
			return errCut
		}
		seq++
		pkt, err := echoRequest(dst.Is6(), a.icmpID, seq&0xffff, census.Payload(r.Secret, r.SiteKey, census.Probe{Round: r.ID, Sent: now}, dst, a.cfg.Note))
		if err != nil {
			return err
		}
		if err := c.WriteTo(pkt, dst); err != nil {
			st.SendErrors++ // unreachable networks: counted, the round goes on
			return nil
		}
		if st.Sent == 0 {
			first = now
		}
		last = now
		st.Sent++
		return nil
	})
	switch {
	case errors.Is(err, errCut):
		st.Cut = true
	case err != nil:
		return nil, err
	}
	st.Finished = a.cfg.now()
	if st.Sent > 1 && last.After(first) {
		st.MeasuredPPS = float64(st.Sent-1) / last.Sub(first).Seconds()
	}
	return st, nil
}

// receive reads echo replies until the conn is closed and hands every
// census reply of a known round, with a valid MAC, to the spooler.
func (a *agent) receive(c conn, v6 bool) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return // closed
		}
		received := a.cfg.now()
		payload, ok := parseEchoReply(v6, buf[:n])
		if !ok || !from.IsValid() {
			continue
		}
		a.mu.Lock()
		if a.handleLocked(payload, from, received) == errUnknownRound && len(a.pending) < maxPending {
			a.pending = append(a.pending, pendingReply{bytes.Clone(payload), from, received})
		}
		a.mu.Unlock()
	}
}

var errUnknownRound = errors.New("unknown census round")

// handleLocked checks one reply payload and queues it for the spool. It
// returns errUnknownRound for a round not (yet) in the schedule. a.mu is
// held; the replies channel is drained by the spooler, which never takes
// a.mu.
func (a *agent) handleLocked(payload []byte, from netip.Addr, received time.Time) error {
	p, err := census.ParseHeader(payload)
	if err != nil {
		return err
	}
	r, known := a.rounds[p.Round]
	if !known {
		return errUnknownRound
	}
	_, mac, err := census.Verify(r.SiteKey, payload, from)
	if err != nil {
		return err // forged, corrupted, or answered by another address than probed
	}
	// The sender's MAC goes to the collector, which checks it (this site
	// has no key to).
	rep := measure.CensusReply{ID: measure.NewUUIDv7(received), Round: p.Round, Addr: from.String(),
		Sent: p.Sent.UTC(), Received: received.UTC(), MAC: hex.EncodeToString(mac)}
	if a.sched != nil && r.Sender == a.sched.Site {
		rtt := float64(received.Sub(p.Sent).Microseconds()) / 1000
		if rtt >= 0 {
			rep.RTTMS = &rtt
		}
	}
	a.replies <- rep
	return nil
}

// spoolLoop appends replies to the spool in batches (one fsync'd record
// of NDJSON lines per batch) until the replies channel is closed.
func (a *agent) spoolLoop() {
	const maxBatch = 500
	var buf bytes.Buffer
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		if err := a.sp.AppendRaw(measure.NewUUIDv7(time.Now()), bytes.Clone(buf.Bytes())); err != nil {
			a.log.Error("spool census replies", "replies", n, "err", err)
		}
		buf.Reset()
		n = 0
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case rep, ok := <-a.replies:
			if !ok {
				flush()
				return
			}
			b, _ := json.Marshal(rep)
			if n > 0 {
				buf.WriteByte('\n')
			}
			buf.Write(b)
			n++
			if n >= maxBatch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// uploadLoop sends spooled replies to the collector and acknowledges them
// once it has answered (accepted, duplicate and rejected lines are all
// final); failures leave them spooled for the next try.
func (a *agent) uploadLoop(ctx context.Context) {
	for {
		if err := a.uploadOnce(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("upload census replies", "err", err)
		}
		if sleep(ctx, a.cfg.UploadEvery) != nil {
			return
		}
	}
}

func (a *agent) uploadOnce(ctx context.Context) error {
	for {
		entries, err := a.sp.Peek(16, 2<<20) // at most 8000 replies: under the collector's line limit
		if err != nil {
			return fmt.Errorf("read spool: %w", err)
		}
		if len(entries) == 0 {
			return nil
		}
		var body []byte
		for _, e := range entries {
			body = append(append(body, e.Data...), '\n')
		}
		var ur measure.UploadResponse
		if err := a.client.Call(ctx, "census replies", "POST", measure.PathCensusReplies, true, nil, body, &ur); err != nil {
			return err
		}
		if ur.Rejected > 0 {
			for _, l := range ur.Lines {
				if l.Verdict == measure.Rejected {
					a.log.Warn("census reply rejected", "reason", l.Reason)
					break
				}
			}
		}
		if err := a.sp.Ack(entries); err != nil {
			return fmt.Errorf("ack spool: %w", err)
		}
	}
}
