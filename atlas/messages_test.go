package atlas

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// good is one valid Atlas dns result with a timeout, used as a template.
const good = `{"type":"dns","fw":5000,"prb_id":1,"msm_id":2,"timestamp":1700000000,"af":4,"dst_addr":"192.0.2.53","error":{"timeout":5000}}`

// TestBadFieldIsNamed: a record with a wrong field says which field, in
// the file's words (not "decode: not a number" nor a Go struct name).
func TestBadFieldIsNamed(t *testing.T) {
	for _, tc := range []struct {
		name, record, want string
	}{
		{"number as text", strings.Replace(good, `"prb_id":1`, `"prb_id":"x"`, 1), `prb_id: not a number ("x")`},
		{"string as number", strings.Replace(good, `"type":"dns"`, `"type":5`, 1), "type: want a JSON string, got number"},
		{"resultset element", strings.Replace(good, `"error":{"timeout":5000}`, `"resultset":[{"time":1700000000},{"time":"soon"}]`, 1), `resultset[1].time: not a number ("soon")`},
		{"truncated record", good[:40], "truncated record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseResult([]byte(tc.record))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Through the reader the element number comes first, as the issue
	// asks: "element 2: prb_id: not a number".
	in := "[" + good + "," + strings.Replace(good, `"prb_id":1`, `"prb_id":"x"`, 1) + "]"
	r := NewReader(strings.NewReader(in))
	var got []string
	for {
		it, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.Err != nil {
			got = append(got, it.Where()+": "+it.Err.Error())
		}
	}
	if len(got) != 1 || got[0] != `element 2: prb_id: not a number ("x")` {
		t.Errorf("bad records = %q, want element 2: prb_id: not a number", got)
	}
}

// TestTruncatedArray: an array cut off inside an element or before its
// closing bracket is reported as truncated (ErrTruncated), after the
// elements before it.
func TestTruncatedArray(t *testing.T) {
	for _, in := range []string{
		"[" + good + "," + good[:50],
		"[" + good + ",",
		"[" + good,
	} {
		r := NewReader(strings.NewReader(in))
		n := 0
		var fatal error
		for {
			it, err := r.Next()
			if err != nil {
				if err != io.EOF {
					fatal = err
				}
				break
			}
			if it.Err == nil {
				n++
			}
		}
		if n != 1 || !errors.Is(fatal, ErrTruncated) || !strings.Contains(fatal.Error(), "truncated") {
			t.Errorf("%q: %d results, fatal %v; want 1 result and a truncated error", in, n, fatal)
		}
	}
}
