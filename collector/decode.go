package collector

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// UploadLimits bounds one upload.
type UploadLimits struct {
	MaxDecompressed int64 // bytes after gunzip
	MaxLine         int   // bytes per line
	MaxLines        int   // lines, blank ones included
}

// Line is one decoded upload line: a valid result, or why it was rejected.
type Line struct {
	N      int             // 1-based line number
	Result *measure.Result // nil when rejected
	ID     string          // result id when it could be read
	Reason string          // rejection reason
	Class  string          // rejection reason class for metrics
}

// Errors for a whole upload (no line verdicts).
var (
	ErrUploadTooLarge = errors.New("upload too large")
	ErrUploadEncoding = errors.New("bad upload encoding")
)

// DecodeUpload splits an NDJSON upload (gzip-compressed when gz) into
// lines and decodes and validates each on its own: one bad line never
// spoils the others. Blank lines get no verdict but count against
// MaxLines, so the work an upload can cause is bounded by MaxLines as well
// as MaxDecompressed (32 MiB of newlines once cost a second of CPU). It
// fails as a whole only when the body cannot be decompressed or exceeds
// the limits.
func DecodeUpload(body []byte, gz bool, lim UploadLimits, now time.Time) ([]Line, error) {
	var src io.Reader = bytes.NewReader(body)
	if gz {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrUploadEncoding, err)
		}
		defer zr.Close()
		zr.Multistream(true)
		src = zr
	}
	// One byte past the limit tells "exactly at" from "over".
	lr := &io.LimitedReader{R: src, N: lim.MaxDecompressed + 1}
	br := bufio.NewReaderSize(lr, 64<<10)
	var lines []Line
	n := 0
	var acc []byte // a line longer than the reader's buffer, being assembled
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !tooLong {
				if len(acc)+len(chunk) > lim.MaxLine+2 {
					tooLong, acc = true, acc[:0]
				} else {
					acc = append(acc, chunk...)
				}
			}
			continue
		}
		if lr.N <= 0 {
			return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrUploadTooLarge, lim.MaxDecompressed)
		}
		eof := errors.Is(err, io.EOF)
		if err != nil && !eof {
			return nil, fmt.Errorf("%w: %v", ErrUploadEncoding, err)
		}
		line := chunk
		if len(acc) > 0 && !tooLong {
			acc = append(acc, chunk...)
			line = acc
		}
		if len(line) > 0 || tooLong {
			n++
			t := bytes.TrimRight(line, "\r\n")
			switch {
			case tooLong || len(t) > lim.MaxLine:
				lines = append(lines, Line{N: n, Reason: fmt.Sprintf("line longer than %d bytes", lim.MaxLine), Class: "too_long"})
			case len(bytes.TrimSpace(t)) > 0:
				lines = append(lines, ParseLine(n, t, now))
			}
			if n > lim.MaxLines {
				return nil, fmt.Errorf("%w: more than %d lines (blank lines count)", ErrUploadTooLarge, lim.MaxLines)
			}
		}
		acc, tooLong = acc[:0], false
		if eof {
			return lines, nil
		}
	}
}

// ParseLine decodes and validates one NDJSON line. Decoding is
// measure.UnmarshalResult: encoding/json's verdict on every line, without
// its reflection cost on the lines probes send.
func ParseLine(n int, b []byte, now time.Time) Line {
	r := new(measure.Result)
	if err := measure.UnmarshalResult(b, r); err != nil {
		return Line{N: n, Reason: "malformed json: " + shorten(err.Error()), Class: "malformed"}
	}
	l := Line{N: n}
	if !r.ID.IsZero() {
		l.ID = r.ID.String()
	}
	if err := r.Validate(now); err != nil {
		l.Reason = "invalid: " + shorten(strings.ReplaceAll(err.Error(), "\n", "; "))
		l.Class = "invalid"
		return l
	}
	l.Result = r
	return l
}

// shorten keeps reasons (which may echo client input) bounded.
func shorten(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
