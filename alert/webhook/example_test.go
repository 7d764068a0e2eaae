package webhook_test

import (
	"crypto/hmac"
	"fmt"

	"github.com/anycatch/anycatch/alert/webhook"
)

// A receiver recomputes the signature over the timestamp, delivery and
// event headers, each followed by a dot, then the raw body, and compares in
// constant time.
func ExampleSign() {
	secret := []byte("0123456789abcdef")
	body := []byte(`{"version":1,"event":"test"}`)
	sig := webhook.Sign(secret, 1796300000, 42, "test", body) // what X-Anycatch-Signature carries

	want := webhook.Sign(secret, 1796300000, 42, "test", body)
	fmt.Println(hmac.Equal([]byte(sig), []byte(want)))
	fmt.Println(sig[:7])
	// Output:
	// true
	// sha256=
}
