package collector

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestBlankLinesCount is the regression test for finding 5: blank (and
// whitespace-only) lines count against MaxLines, so an upload of nothing
// but newlines stops at the limit instead of being read to the end.
func TestBlankLinesCount(t *testing.T) {
	lim := UploadLimits{MaxDecompressed: 32 << 20, MaxLine: 1 << 20, MaxLines: 10000}
	for _, tc := range []struct {
		name string
		body string
	}{
		{"newlines", strings.Repeat("\n", lim.MaxLines+1)},
		{"crlf", strings.Repeat("\r\n", lim.MaxLines+1)},
		{"spaces", strings.Repeat("  \n", lim.MaxLines+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeUpload([]byte(tc.body), false, lim, fuzzNow)
			if !errors.Is(err, ErrUploadTooLarge) {
				t.Errorf("%d blank lines: err = %v, want ErrUploadTooLarge", lim.MaxLines+1, err)
			}
		})
	}
	// Exactly MaxLines blank lines is fine, and gives no verdicts.
	lines, err := DecodeUpload([]byte(strings.Repeat("\n", lim.MaxLines)), false, lim, fuzzNow)
	if err != nil || len(lines) != 0 {
		t.Errorf("%d blank lines: %d verdicts, %v; want none, nil", lim.MaxLines, len(lines), err)
	}

	// The attack: 32 MiB of newlines, gzipped to ~32 KiB. Measured, not
	// asserted tightly (shared machine): it used to take ~1 s.
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(bytes.Repeat([]byte{'\n'}, 32<<20))
	zw.Close()
	start := time.Now()
	_, err = DecodeUpload(buf.Bytes(), true, lim, fuzzNow)
	took := time.Since(start)
	t.Logf("%d KiB gzip of 32 MiB newlines refused in %s: %v", buf.Len()>>10, took, err)
	if !errors.Is(err, ErrUploadTooLarge) {
		t.Errorf("gzipped newlines: err = %v, want ErrUploadTooLarge", err)
	}
	if took > 2*time.Second {
		t.Errorf("refusing took %s; the work is meant to stop at MaxLines", took)
	}
}
