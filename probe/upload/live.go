package upload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/anycatch/anycatch/measure"
)

// ErrLiveUnsupported means the collector (or a proxy in front of it) does
// not offer the live channel: the probe should keep polling and try again
// much later.
var ErrLiveUnsupported = errors.New("live channel not offered")

// LiveConn is an authenticated live channel to the collector. Next and
// Close may be called from different goroutines; Next from one only.
type LiveConn struct {
	conn *websocket.Conn
	// Version is the collector's schedule version sent on welcome.
	Version string
}

// DialLive opens the live channel: a signed WebSocket upgrade, then the
// challenge-response handshake (see [measure.PathLive]). ctx bounds the
// handshake only; the returned connection lives until Close or an error.
func (c *Client) DialLive(ctx context.Context) (*LiveConn, error) {
	if c.id.Probe == "" {
		return nil, errors.New("live: probe is not enrolled")
	}
	hctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	u := *c.base
	u.Path += measure.PathLive
	hdr := c.signedHeader(http.MethodGet, measure.PathLive, nil)
	hdr.Set("User-Agent", c.opt.UserAgent)
	conn, resp, err := websocket.Dial(hctx, u.String(), &websocket.DialOptions{
		HTTPClient: c.hc, HTTPHeader: hdr, Subprotocols: []string{measure.LiveSubprotocol},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			se := &StatusError{Op: "live", StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.opt.Now())}
			switch {
			case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusMethodNotAllowed,
				resp.StatusCode == http.StatusUpgradeRequired, resp.StatusCode == http.StatusOK:
				// Nobody here speaks WebSocket on this path: an old
				// collector or a proxy that strips Upgrade.
				return nil, fmt.Errorf("%w: %w", ErrLiveUnsupported, se)
			}
			return nil, se
		}
		return nil, fmt.Errorf("live: dial: %w", err)
	}
	conn.SetReadLimit(measure.MaxLiveMessage)
	lc := &LiveConn{conn: conn}
	if err := lc.handshake(hctx, c.id); err != nil {
		conn.CloseNow()
		return nil, err
	}
	return lc, nil
}

func (lc *LiveConn) handshake(ctx context.Context, id *Identity) error {
	m, err := lc.Next(ctx)
	if err != nil {
		return fmt.Errorf("live: read challenge: %w", err)
	}
	if m.Type != measure.LiveChallenge || m.Nonce == "" {
		return fmt.Errorf("live: expected a challenge, got %q", m.Type)
	}
	b, _ := json.Marshal(measure.LiveMessage{Type: measure.LiveAuth, Probe: id.Probe, Proof: measure.LiveProof(id.PrivateKey, id.Probe, m.Nonce)})
	if err := lc.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("live: send proof: %w", err)
	}
	m, err = lc.Next(ctx)
	if err != nil {
		return fmt.Errorf("live: authentication: %w", err)
	}
	if m.Type != measure.LiveWelcome {
		return fmt.Errorf("live: expected welcome, got %q", m.Type)
	}
	lc.Version = m.Version
	return nil
}

// Next returns the next message from the collector. Frames that are not
// JSON text are an error (the channel is then unusable).
func (lc *LiveConn) Next(ctx context.Context) (measure.LiveMessage, error) {
	var m measure.LiveMessage
	typ, b, err := lc.conn.Read(ctx)
	if err != nil {
		return m, err
	}
	if typ != websocket.MessageText {
		return m, errors.New("live: binary frame")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("live: decode message: %w", err)
	}
	return m, nil
}

// Send writes one message to the collector.
func (lc *LiveConn) Send(ctx context.Context, m measure.LiveMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("live: encode message: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return lc.conn.Write(ctx, websocket.MessageText, b)
}

// Ping checks the collector still answers; Next must be running meanwhile.
func (lc *LiveConn) Ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return lc.conn.Ping(ctx)
}

// Close closes the channel.
func (lc *LiveConn) Close() error { return lc.conn.Close(websocket.StatusNormalClosure, "") }

// CloseNow drops the channel without the closing handshake.
func (lc *LiveConn) CloseNow() error { return lc.conn.CloseNow() }

// signedHeader returns the probe's authentication headers for one request.
// Kept in one place so the signing scheme can change without touching
// callers.
func (c *Client) signedHeader(method, path string, body []byte) http.Header {
	h := http.Header{}
	measure.SignRequest(h, c.id.PrivateKey, c.id.Probe, method, path, body, c.opt.Now())
	return h
}

// IsLiveUnsupported reports whether err says the live channel is not
// offered at all (as opposed to a passing failure).
func IsLiveUnsupported(err error) bool {
	return errors.Is(err, ErrLiveUnsupported) || err != nil && strings.Contains(err.Error(), "subprotocol")
}
