package measure

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// verify is Verifier.Verify on an *http.Request, as the collector calls it.
func verify(v *Verifier, pub ed25519.PublicKey, r *http.Request, body []byte, now time.Time) error {
	return v.Verify(pub, r.Method, RequestTarget(r.URL), r.Header, body, now)
}

// signedReq builds a request to target signed at now.
func signedReq(t *testing.T, priv ed25519.PrivateKey, method, target string, body []byte, now time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, "http://collector.test"+target, bytes.NewReader(body))
	SignRequest(r.Header, priv, "p1", method, target, body, now)
	return r
}

func TestSignVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"x":1}`)
	var v Verifier
	if err := verify(&v, pub, signedReq(t, priv, "POST", PathResults, body, now), body, now); err != nil {
		t.Fatalf("Verify(valid) = %v", err)
	}
	if err := verify(&v, pub, signedReq(t, priv, "GET", PathSchedule+"?since=1", nil, now), nil, now); err != nil {
		t.Fatalf("Verify(valid with query) = %v", err)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name   string
		pub    ed25519.PublicKey
		mutate func(r *http.Request) *http.Request
		body   []byte
		now    time.Time
	}{
		{"tampered body", pub, nil, []byte(`{"x":2}`), now},
		{"other path", pub, func(r *http.Request) *http.Request { r.URL.Path = PathHeartbeat; return r }, body, now},
		{"query added", pub, func(r *http.Request) *http.Request { r.URL.RawQuery = "limit=1"; return r }, body, now},
		{"other method", pub, func(r *http.Request) *http.Request { r.Method = "PUT"; return r }, body, now},
		{"other probe id", pub, func(r *http.Request) *http.Request { r.Header.Set(HeaderProbe, "p2"); return r }, body, now},
		{"other nonce", pub, func(r *http.Request) *http.Request {
			r.Header.Set(HeaderNonce, "00000000000000000000000000000000")
			return r
		}, body, now},
		{"no nonce", pub, func(r *http.Request) *http.Request { r.Header.Del(HeaderNonce); return r }, body, now},
		{"other key", otherPub, nil, body, now},
		{"replayed later", pub, nil, body, now.Add(10 * time.Minute)},
		{"garbage signature", pub, func(r *http.Request) *http.Request { r.Header.Set(HeaderSignature, "%%%"); return r }, body, now},
		{"garbage timestamp", pub, func(r *http.Request) *http.Request { r.Header.Set(HeaderTimestamp, "soon"); return r }, body, now},
		{"short key", pub[:5], nil, body, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signedReq(t, priv, "POST", PathResults, body, now)
			if tt.mutate != nil {
				r = tt.mutate(r)
			}
			err := verify(&v, tt.pub, r, tt.body, tt.now)
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify() = %v, want ErrBadSignature", err)
			}
		})
	}
}

// TestVerifierRefusesReplay is the regression test for replayable signed
// requests: the identical request (same headers, same body) is accepted
// once and refused the second time while still inside the skew window;
// the old scheme accepted it for ±MaxClockSkew.
func TestVerifierRefusesReplay(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"x":1}`)
	r := signedReq(t, priv, "POST", PathHeartbeat, body, now)
	var v Verifier
	if err := verify(&v, pub, r, body, now); err != nil {
		t.Fatalf("first: %v", err)
	}
	err := verify(&v, pub, r, body, now.Add(time.Minute))
	if !errors.Is(err, ErrReplay) || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("replay: %v, want ErrReplay", err)
	}
	// A fresh signature of the same content is a new request.
	if err := verify(&v, pub, signedReq(t, priv, "POST", PathHeartbeat, body, now), body, now); err != nil {
		t.Fatalf("re-signed: %v", err)
	}
	// Once the timestamp leaves the window the entry may go: the
	// timestamp check refuses the replay from then on.
	later := now.Add(MaxClockSkew + 2*time.Second)
	if err := verify(&v, pub, r, body, later); !errors.Is(err, ErrBadSignature) || errors.Is(err, ErrReplay) {
		t.Fatalf("replay after window: %v, want timestamp refusal", err)
	}
	if err := verify(&v, pub, signedReq(t, priv, "POST", PathHeartbeat, body, later), body, later); err != nil {
		t.Fatal(err)
	}
	if n := len(v.seen); n != 1 {
		t.Errorf("cache holds %d entries after the sweep, want 1", n)
	}
}

func TestVerifierCacheBound(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	v := Verifier{MaxNonces: 3}
	for i := range 3 {
		if err := verify(&v, pub, signedReq(t, priv, "GET", PathSchedule, nil, now), nil, now); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := verify(&v, pub, signedReq(t, priv, "GET", PathSchedule, nil, now), nil, now); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("4th request: %v, want ErrReplayCacheFull", err)
	}
	after := now.Add(MaxClockSkew + 2*time.Second)
	if err := verify(&v, pub, signedReq(t, priv, "GET", PathSchedule, nil, after), nil, after); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// FuzzVerifier feeds arbitrary header values, method and target to
// Verifier.Verify: it must never panic, and must never accept a request
// that was not signed by the key (the fuzzer cannot forge ed25519).
func FuzzVerifier(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	SignRequest(h, priv, "p1", "POST", PathResults, []byte("x"), now)
	// Seeds: a genuine header set, and the shapes of malformed ones.
	f.Add(h.Get(HeaderProbe), h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature), "POST", PathResults+"?a=b", []byte("x"))
	f.Add("", "", "", "", "GET", "/", []byte(nil))                                                   // nothing at all
	f.Add("p1", "-9223372036854775808", "zz", "====", "POST", "/%zz", []byte{0})                     // extreme timestamp, bad nonce
	f.Add("p1\x00", "1800000000", "0123456789abcdef", "AAAA", "GET", "/probe/v1/schedule", []byte{}) // NUL in probe id
	f.Fuzz(func(t *testing.T, probe, ts, nonce, sig, method, target string, body []byte) {
		r, err := http.NewRequest(method, "http://c.test"+target, bytes.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set(HeaderProbe, probe)
		r.Header.Set(HeaderTimestamp, ts)
		r.Header.Set(HeaderNonce, nonce)
		r.Header.Set(HeaderSignature, sig)
		var v Verifier
		if err := verify(&v, pub, r, body, now); err == nil && sig != h.Get(HeaderSignature) {
			t.Fatalf("accepted a request the key did not sign: %q %q %q %q", probe, ts, nonce, sig)
		}
	})
}

// TestVerifierPerProbeBound: one key signing request after request cannot
// fill the replay cache for everyone: past MaxNoncesPerProbe it alone is
// refused, other probes still get in, and it recovers once its nonces
// expire.
func TestVerifierPerProbeBound(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	v := Verifier{MaxNonces: 100, MaxNoncesPerProbe: 3}
	req := func(probe string, at time.Time) *http.Request {
		r := httptest.NewRequest("GET", "http://c.test"+PathSchedule, nil)
		SignRequest(r.Header, priv, probe, "GET", PathSchedule, nil, at)
		return r
	}
	for i := range 3 {
		if err := verify(&v, pub, req("p1", now), nil, now); err != nil {
			t.Fatalf("p1 request %d: %v", i, err)
		}
	}
	if err := verify(&v, pub, req("p1", now), nil, now); !errors.Is(err, ErrTooManyNonces) {
		t.Fatalf("p1 4th request: %v, want ErrTooManyNonces", err)
	}
	if err := verify(&v, pub, req("p2", now), nil, now); err != nil {
		t.Fatalf("p2 while p1 is over its bound: %v", err)
	}
	after := now.Add(MaxClockSkew + 2*time.Second)
	if err := verify(&v, pub, req("p1", after), nil, after); err != nil {
		t.Fatalf("p1 after its nonces expired: %v", err)
	}
}
