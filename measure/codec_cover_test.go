package measure

import (
	"reflect"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/internal/fieldcover"
)

// TestCodecFixturesCoverEveryField guards the hand-written codec
// (encode.go, decode.go) against drift. TestAppendResultMatchesMarshal
// (encode) and TestUnmarshalResultFastPath (decode) compare it with
// encoding/json over codecResults, but only for the fields a fixture
// sets: a new field of Result (or of a type inside it) that every fixture
// leaves zero would be dropped silently. This test fails until a fixture
// sets every encoded field; the two comparisons then fail until the
// codec writes and reads it.
func TestCodecFixturesCoverEveryField(t *testing.T) {
	var fixtures []any
	for _, r := range codecResults() {
		fixtures = append(fixtures, r)
	}
	if unset := fieldcover.Unset(reflect.TypeFor[Result](), fixtures...); len(unset) > 0 {
		t.Errorf("no fixture in codecResults (codec_test.go) sets %s: the hand-written codec is not checked for %s; "+
			"set each in a fixture, then make AppendResult (encode.go) and the fast decoder (decode.go) handle it",
			strings.Join(unset, ", "), map[bool]string{true: "it", false: "them"}[len(unset) == 1])
	}
	if n := len(fieldcover.Paths(reflect.TypeFor[Result]())); n < 60 {
		t.Errorf("only %d wire fields found under Result: the walk is broken", n)
	}
}
