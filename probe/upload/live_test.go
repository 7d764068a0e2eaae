package upload

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/anycatch/anycatch/measure"
)

// liveServer answers the live handshake (challenge, then welcome once the
// proof verifies against id's key).
func liveServer(t *testing.T, id *Identity) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{measure.LiveSubprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		b, _ := json.Marshal(measure.LiveMessage{Type: measure.LiveChallenge, Nonce: "bm9uY2U="})
		c.Write(ctx, websocket.MessageText, b)
		_, b, err = c.Read(ctx)
		var m measure.LiveMessage
		if err != nil || json.Unmarshal(b, &m) != nil || measure.VerifyLiveProof(id.PublicKey(), id.Probe, "bm9uY2U=", m.Proof) != nil {
			c.Close(websocket.StatusPolicyViolation, "bad proof")
			return
		}
		b, _ = json.Marshal(measure.LiveMessage{Type: measure.LiveWelcome, Version: "v1"})
		c.Write(ctx, websocket.MessageText, b)
		c.Read(ctx) // until the client goes
	})
}

// TestDialLiveOverHTTP2TLS: against a TLS server that speaks HTTP/2, the
// probe's client (which prefers HTTP/2) still gets its WebSocket: net/http
// sends a request carrying a WebSocket Upgrade over HTTP/1.1 on its own.
// This guards that property, on which a TLS deployment's live channel
// depends.
func TestDialLiveOverHTTP2TLS(t *testing.T) {
	id, err := NewIdentity("https://x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id.Probe = "p-1"
	srv := httptest.NewUnstartedServer(liveServer(t, id))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = true
	c, err := New(srv.URL, id, Options{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lc, err := c.DialLive(ctx)
	if err != nil {
		t.Fatalf("dial over an HTTP/2-capable TLS client: %v", err)
	}
	defer lc.CloseNow()
	if lc.Version != "v1" {
		t.Errorf("welcome version %q", lc.Version)
	}
	if res, err := (&http.Client{Transport: tr}).Get(srv.URL); err == nil {
		res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Logf("note: plain requests used HTTP/%d", res.ProtoMajor)
		}
	}
}

// TestDialLiveUnsupported: a collector without the endpoint is reported
// as not offering the channel (the probe then polls).
func TestDialLiveUnsupported(t *testing.T) {
	id, _ := NewIdentity("http://x", time.Now())
	id.Probe = "p-1"
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c, _ := New(srv.URL, id, Options{})
	_, err := c.DialLive(context.Background())
	if !IsLiveUnsupported(err) {
		t.Fatalf("got %v, want ErrLiveUnsupported", err)
	}
}
