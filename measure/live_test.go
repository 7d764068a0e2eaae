package measure

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
)

func TestLiveProof(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, otherKey, _ := ed25519.GenerateKey(nil)
	proof := LiveProof(key, "p-1", "nonce-a")
	for _, c := range []struct {
		name              string
		pub               ed25519.PublicKey
		probe, nonce, sig string
		ok                bool
	}{
		{"good", pub, "p-1", "nonce-a", proof, true},
		{"another nonce (replay)", pub, "p-1", "nonce-b", proof, false},
		{"another probe id", pub, "p-2", "nonce-a", proof, false},
		{"another key", otherPub, "p-1", "nonce-a", proof, false},
		{"signed by another key", pub, "p-1", "nonce-a", LiveProof(otherKey, "p-1", "nonce-a"), false},
		{"empty nonce", pub, "p-1", "", LiveProof(key, "p-1", ""), false},
		{"not base64", pub, "p-1", "nonce-a", "!!", false},
		{"short key", pub[:10], "p-1", "nonce-a", proof, false},
	} {
		if err := VerifyLiveProof(c.pub, c.probe, c.nonce, c.sig); (err == nil) != c.ok {
			t.Errorf("%s: got %v, want ok=%t", c.name, err, c.ok)
		}
	}
	// A request signature over the same bytes is no live proof (distinct
	// prefixes), so one cannot stand in for the other.
	if VerifyLiveProof(pub, "p-1", "nonce-a", string(SigningMessage("p-1", "GET", PathLive, 0, "nonce-a", nil))) == nil {
		t.Error("a request signing message accepted as a proof")
	}
}

// FuzzLiveMessage: any frame decodes into a LiveMessage or fails cleanly,
// and a decoded auth message never verifies against a key that did not
// sign it.
func FuzzLiveMessage(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(nil)
	f.Add([]byte(`{"type":"auth","probe":"p-1","proof":"AAAA"}`))                  // short proof
	f.Add([]byte(`{"type":"nudge","measurements":["a/ping/4"],"request":"od-1"}`)) // a nudge
	f.Add([]byte(`{"type":"refused","measurements":[1,2]}`))                       // wrong element type
	f.Add([]byte(`{"type":"welcome","version":"` + string(make([]byte, 300)) + `"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m LiveMessage
		if json.Unmarshal(b, &m) != nil {
			return
		}
		if VerifyLiveProof(pub, m.Probe, m.Nonce+"x", m.Proof) == nil {
			t.Fatalf("unsigned proof %q verified", m.Proof)
		}
	})
}
