package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/lab/labstack"
	"github.com/anycatch/anycatch/measure"
)

// hostileProbe is an enrolled probe driven by the test: correctly signed,
// sending whatever it likes. It talks only to the server on loopback and
// measures nothing.
type hostileProbe struct {
	t   *testing.T
	url string
	id  string
	key ed25519.PrivateKey
	hc  *http.Client
}

func (h *hostileProbe) send(method, path string, body []byte, sign bool) (int, []byte, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sign {
		measure.SignRequest(req.Header, h.key, h.id, method, path, body, time.Now())
	}
	return h.do(req)
}

func (h *hostileProbe) do(req *http.Request) (int, []byte, http.Header) {
	h.t.Helper()
	resp, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, resp.Header
}

// TestHostileProbe runs issue 20's attacks against the real server binary
// while the lab's real probe agents measure and upload: a probe uploading
// identities with NUL bytes gets a final per-line rejection and every
// honest probe's results keep committing; a replayed signed request is
// refused; /metrics is not public; guessing enrollment tokens runs into
// 429s.
func TestHostileProbe(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := startStack(ctx, t, "h", labstack.Options{
		EnrollRate: 30, // the server's default, which the lab turns off
	})
	took, _ := waitCatchment(ctx, t, s, 4, 3*time.Minute)
	t.Logf("IPv4 catchment matches the lab's truth %s after start", took.Round(time.Millisecond))

	// Enroll the hostile probe with a token of its own.
	var tok struct {
		Secret string `json:"secret"`
	}
	h := &hostileProbe{t: t, url: s.URL, hc: &http.Client{Timeout: 30 * time.Second}}
	body, _ := json.Marshal(map[string]any{"name": "hostile", "max_uses": 1, "ttl": "1h"})
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/admin/tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.AdminKey)
	if code, b, _ := h.do(req); code/100 != 2 || json.Unmarshal(b, &tok) != nil {
		t.Fatalf("create token: %d %s", code, b)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	h.key = key
	body, _ = json.Marshal(measure.EnrollRequest{Token: tok.Secret, PublicKey: pub, Version: "hostile"})
	code, b, _ := h.send("POST", measure.PathEnroll, body, false)
	var er measure.EnrollResponse
	if code != http.StatusCreated || json.Unmarshal(b, &er) != nil {
		t.Fatalf("enroll: %d %s", code, b)
	}
	h.id = er.Probe
	var sched measure.Schedule
	if code, b, _ := h.send("GET", measure.PathSchedule, nil, true); code != http.StatusOK || json.Unmarshal(b, &sched) != nil {
		t.Fatalf("schedule: %d %s", code, b)
	}
	var msm *measure.Measurement
	for i, m := range sched.Measurements {
		if a, err := netip.ParseAddr(m.Address); err == nil && a.Is4() && m.Spec.Kind == measure.KindIdentity {
			msm = &sched.Measurements[i]
		}
	}
	if msm == nil {
		t.Fatalf("no IPv4 identity measurement in %+v", sched)
	}

	// 1. NUL identities, uploaded while the lab's probes upload theirs.
	line := func(ident string, ts time.Time) []byte {
		r := &measure.Result{V: measure.Version, ID: measure.NewUUIDv7(ts), Measurement: msm.ID, Kind: measure.KindIdentity,
			Time: ts.UTC(), Dst: msm.Address, AF: 4, DNS: &measure.DNSResult{Server: msm.Address + ":53",
				Exchanges: []measure.DNSExchange{{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Proto: "udp", RTT: 5, Rcode: "NOERROR"}},
				Identity:  &measure.Identity{HostnameBind: ident}}}
		b, _ := json.Marshal(r)
		return b
	}
	attackStart := time.Now()
	uploads := 0
	for time.Since(attackStart) < 3*interval*time.Second && uploads < 200 {
		now := time.Now()
		up := bytes.Join([][]byte{line("abc\x00def", now), line("=HYPERLINK(\"http://198.18.0.66/\")", now.Add(time.Millisecond))}, []byte("\n"))
		code, b, _ := h.send("POST", measure.PathResults, up, true)
		var ur measure.UploadResponse
		if code != http.StatusOK || json.Unmarshal(b, &ur) != nil {
			t.Fatalf("hostile upload %d: %d %s, want 200 with verdicts", uploads, code, b)
		}
		if ur.Rejected != 1 || ur.Accepted != 1 || !strings.Contains(ur.Lines[0].Reason, "NUL") {
			t.Fatalf("hostile upload %d: %+v, want the NUL line rejected and the other accepted", uploads, ur)
		}
		uploads++
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("%d hostile uploads in %s, each with its NUL line rejected", uploads, time.Since(attackStart).Round(time.Second))
	// Every honest probe committed results during the attack.
	for _, c := range s.Lab.Clients() {
		client := c.Name
		// Uploads trail measurements by up to an upload period: wait.
		deadline := time.Now().Add(45 * time.Second)
		r := newestResult(ctx, t, s, client, measure.KindIdentity, 4)
		for (r == nil || !r.Time.After(attackStart)) && time.Now().Before(deadline) {
			time.Sleep(time.Second)
			r = newestResult(ctx, t, s, client, measure.KindIdentity, 4)
		}
		if r == nil || !r.Time.After(attackStart) {
			t.Errorf("probe of %s: newest identity result %v, want one measured during the attack (after %s)", client, r, attackStart.Format(time.RFC3339))
		}
	}
	waitCatchment(ctx, t, s, 4, time.Minute) // and the map still matches the routers

	// 2. A replayed signed request is refused.
	hb, _ := json.Marshal(measure.Heartbeat{Version: "hostile"})
	req, _ = http.NewRequest("POST", s.URL+measure.PathHeartbeat, bytes.NewReader(hb))
	measure.SignRequest(req.Header, h.key, h.id, "POST", measure.PathHeartbeat, hb, time.Now())
	again := req.Clone(ctx)
	again.Body = io.NopCloser(bytes.NewReader(hb))
	if code, b, _ := h.do(req); code/100 != 2 {
		t.Fatalf("heartbeat: %d %s", code, b)
	}
	if code, b, _ := h.do(again); code != http.StatusUnauthorized || !strings.Contains(string(b), "replay") {
		t.Errorf("replayed heartbeat: %d %s, want 401 naming the replay", code, b)
	}

	// 3. /metrics is not public on the main listener.
	req, _ = http.NewRequest("GET", s.URL+"/metrics", nil)
	if code, _, _ := h.do(req); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a key: %d, want 401", code)
	}

	// 4. Guessing enrollment tokens: 429 once the address's budget is spent.
	var n401, n429 int
	for i := range 40 {
		p, _, _ := ed25519.GenerateKey(nil)
		body, _ := json.Marshal(measure.EnrollRequest{Token: fmt.Sprintf("act_guess%034d", i), PublicKey: p})
		code, _, hdr := h.send("POST", measure.PathEnroll, body, false)
		switch {
		case code == http.StatusUnauthorized:
			n401++
		case code == http.StatusTooManyRequests && hdr.Get("Retry-After") != "":
			n429++
		default:
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	t.Logf("40 wrong enrollment tokens: %d×401, %d×429", n401, n429)
	if n429 == 0 || n401 > 30 {
		t.Errorf("40 guesses: %d×401 %d×429, want at most 30 answered before 429s", n401, n429)
	}
}
