package measure

import (
	"crypto/ed25519"
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	ts := now.Unix()
	body := []byte(`{"x":1}`)
	sig := Sign(priv, "POST", PathResults, ts, body)
	tsh := strconv.FormatInt(ts, 10)
	if err := Verify(pub, "POST", PathResults, tsh, sig, body, now); err != nil {
		t.Fatalf("Verify(valid) = %v", err)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name              string
		pub               ed25519.PublicKey
		method, path, tsh string
		sig               string
		body              []byte
		now               time.Time
	}{
		{"tampered body", pub, "POST", PathResults, tsh, sig, []byte(`{"x":2}`), now},
		{"other path", pub, "POST", PathHeartbeat, tsh, sig, body, now},
		{"other method", pub, "PUT", PathResults, tsh, sig, body, now},
		{"other key", otherPub, "POST", PathResults, tsh, sig, body, now},
		{"replayed later", pub, "POST", PathResults, tsh, sig, body, now.Add(10 * time.Minute)},
		{"garbage signature", pub, "POST", PathResults, tsh, "%%%", body, now},
		{"garbage timestamp", pub, "POST", PathResults, "soon", sig, body, now},
		{"short key", pub[:5], "POST", PathResults, tsh, sig, body, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.pub, tt.method, tt.path, tt.tsh, tt.sig, tt.body, tt.now)
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify() = %v, want ErrBadSignature", err)
			}
		})
	}
}
