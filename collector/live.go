package collector

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/anycatch/anycatch/measure"
)

// Live channel timings. A probe that does not answer the challenge within
// liveAuthTimeout is dropped; every connection is pinged every
// livePingEvery so dead peers (and idle-killing proxies) are noticed.
const (
	liveAuthTimeout  = 10 * time.Second
	livePingEvery    = 30 * time.Second
	liveWriteTimeout = 10 * time.Second
	liveQueue        = 16 // messages waiting per connection before it is dropped
)

// hub tracks the authenticated live channels, at most one per probe: a
// probe that reconnects replaces its earlier connection.
type hub struct {
	metrics *Metrics
	log     *slog.Logger

	mu    sync.Mutex
	conns map[string]*liveConn
}

type liveConn struct {
	probe string
	out   chan measure.LiveMessage
	stop  chan struct{} // closed to drop the connection
	once  sync.Once
}

func (lc *liveConn) drop() { lc.once.Do(func() { close(lc.stop) }) }

// send queues m without blocking. A connection whose queue is full is too
// slow to be useful: it is dropped, and the probe's reconnect (which
// starts with a schedule check) catches it up.
func (lc *liveConn) send(m measure.LiveMessage) bool {
	select {
	case lc.out <- m:
		return true
	default:
		lc.drop()
		return false
	}
}

func newHub(m *Metrics, log *slog.Logger) *hub {
	return &hub{metrics: m, log: log, conns: map[string]*liveConn{}}
}

func (h *hub) add(lc *liveConn) {
	h.mu.Lock()
	old := h.conns[lc.probe]
	h.conns[lc.probe] = lc
	n := len(h.conns)
	h.mu.Unlock()
	if old != nil {
		old.drop()
	}
	h.metrics.live.Set(float64(n))
}

func (h *hub) remove(lc *liveConn) {
	h.mu.Lock()
	if h.conns[lc.probe] == lc {
		delete(h.conns, lc.probe)
	}
	n := len(h.conns)
	h.mu.Unlock()
	h.metrics.live.Set(float64(n))
}

// dropAll closes every live channel.
func (h *hub) dropAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, lc := range h.conns {
		lc.drop()
	}
}

// broadcast queues m to every connected probe.
func (h *hub) broadcast(m measure.LiveMessage) int {
	h.mu.Lock()
	conns := make([]*liveConn, 0, len(h.conns))
	for _, lc := range h.conns {
		conns = append(conns, lc)
	}
	h.mu.Unlock()
	n := 0
	for _, lc := range conns {
		if lc.send(m) {
			n++
		} else {
			h.metrics.livePushes.WithLabelValues("dropped").Inc()
		}
	}
	h.metrics.livePushes.WithLabelValues(m.Type).Add(float64(n))
	return n
}

// sendTo queues m to the listed probes that are connected and returns
// those it reached.
func (h *hub) sendTo(probes []string, m measure.LiveMessage) []string {
	var reached []string
	h.mu.Lock()
	conns := make([]*liveConn, 0, len(probes))
	for _, p := range probes {
		if lc := h.conns[p]; lc != nil {
			conns = append(conns, lc)
		}
	}
	h.mu.Unlock()
	for _, lc := range conns {
		if lc.send(m) {
			reached = append(reached, lc.probe)
		}
	}
	h.metrics.livePushes.WithLabelValues(m.Type).Add(float64(len(reached)))
	return reached
}

// connected returns the ids of the probes holding a live channel.
func (h *hub) connected() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.conns))
	for p := range h.conns {
		out = append(out, p)
	}
	return out
}

// LiveProbes returns the ids of the probes connected to this collector's
// live channel right now.
func (c *Collector) LiveProbes() []string { return c.live.connected() }

// Nudge asks the listed connected probes to run the scheduled measurements
// msms once now, out of turn, and returns the probes it reached. Results
// come back through the probes' spool and the normal upload.
func (c *Collector) Nudge(probes, msms []string, reason string) []string {
	if len(probes) == 0 || len(msms) == 0 {
		return nil
	}
	return c.live.sendTo(probes, measure.LiveMessage{Type: measure.LiveNudge, Measurements: msms, Reason: reason})
}

// handleLive upgrades a signed GET to the live channel. The signed upgrade
// request proves the probe held its key within the clock-skew window; the
// challenge that follows, over a fresh random nonce, makes a replayed
// upgrade useless.
func (c *Collector) handleLive(w http.ResponseWriter, r *http.Request) {
	if c.cfg.LiveDisabled {
		writeError(w, measure.CodeNotFound, "live channel disabled on this collector; poll the schedule")
		return
	}
	probe := probeFrom(r.Context())
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{measure.LiveSubprotocol}})
	if err != nil {
		return // Accept already answered
	}
	defer conn.CloseNow()
	if conn.Subprotocol() != measure.LiveSubprotocol {
		conn.Close(websocket.StatusPolicyViolation, "subprotocol "+measure.LiveSubprotocol+" required")
		return
	}
	conn.SetReadLimit(measure.MaxLiveMessage)
	ctx := r.Context()
	if err := c.liveAuth(ctx, conn, probe); err != nil {
		c.metrics.authFailures.WithLabelValues("live").Inc()
		c.log.Debug("live channel auth failed", "probe", probe, "err", err)
		conn.Close(websocket.StatusPolicyViolation, "authentication failed")
		return
	}
	lc := &liveConn{probe: probe, out: make(chan measure.LiveMessage, liveQueue), stop: make(chan struct{})}
	version := ""
	if p := c.plan.Load(); p != nil {
		version = p.version
	}
	lc.out <- measure.LiveMessage{Type: measure.LiveWelcome, Version: version}
	c.live.add(lc)
	defer c.live.remove(lc)

	// The reader notices the peer closing; it must run for pings to be
	// answered. After auth a probe sends only refusals; anything else is
	// ignored.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			typ, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var m measure.LiveMessage
			if typ == websocket.MessageText && json.Unmarshal(b, &m) == nil && m.Type == measure.LiveRefused {
				c.refusedOnDemand(probe, m)
			}
		}
	}()
	defer func() { conn.CloseNow(); <-readDone }()

	ping := time.NewTicker(livePingEvery)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusGoingAway, "collector shutting down")
			return
		case <-readDone:
			return
		case <-lc.stop:
			conn.Close(websocket.StatusTryAgainLater, "replaced or too slow")
			return
		case m := <-lc.out:
			b, _ := json.Marshal(m)
			wctx, cancel := context.WithTimeout(ctx, liveWriteTimeout)
			err := conn.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, liveWriteTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// liveAuth runs the challenge: a fresh nonce out, the probe's signature
// over it back, checked against the key of the probe that signed the
// upgrade request.
func (c *Collector) liveAuth(ctx context.Context, conn *websocket.Conn, probe string) error {
	ctx, cancel := context.WithTimeout(ctx, liveAuthTimeout)
	defer cancel()
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	nonce := base64.StdEncoding.EncodeToString(raw[:])
	b, _ := json.Marshal(measure.LiveMessage{Type: measure.LiveChallenge, Nonce: nonce})
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	typ, b, err := conn.Read(ctx)
	if err != nil {
		return err
	}
	var m measure.LiveMessage
	if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil || m.Type != measure.LiveAuth {
		return errors.New("live auth: expected an auth message")
	}
	if m.Probe != probe {
		return errors.New("live auth: probe id differs from the signed request")
	}
	key, err := c.keys.get(ctx, c.store, probe, c.cfg.Now())
	if err != nil {
		return err
	}
	if key.Disabled {
		return errors.New("live auth: probe is disabled")
	}
	if key.Role != RoleProbe {
		return errors.New("live auth: " + roleRefusal(RoleProbe))
	}
	return measure.VerifyLiveProof(key.PublicKey, probe, nonce, m.Proof)
}
