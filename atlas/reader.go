package atlas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes bounds one NDJSON line (and so the reader's memory); a
// longer line is reported as an error item and skipped.
const MaxLineBytes = 8 << 20

// Item is one thing read from a results file: a converted result, or the
// reason one line/element could not be converted. Exactly one of Result
// and Err is set.
type Item struct {
	Parsed
	Line    int   // 1-based NDJSON line; 0 for a JSON array
	Element int   // 1-based array element; 0 for NDJSON
	Err     error // why this line/element produced no result
}

// Where names the item's position for messages: "line 7", "element 3",
// plus "resultset[1]" for a resultset member.
func (it Item) Where() string {
	s := fmt.Sprintf("line %d", it.Line)
	if it.Element > 0 {
		s = fmt.Sprintf("element %d", it.Element)
	}
	if it.Meta.Sub >= 0 && it.Err == nil && it.Result != nil {
		s += fmt.Sprintf(" resultset[%d]", it.Meta.Sub)
	}
	return s
}

// Reader streams Atlas results from a JSON array (as the Atlas API returns
// them) or NDJSON (one result per line, as its streaming and file
// downloads do), detected from the first non-blank byte. It holds one
// line or element at a time.
type Reader struct {
	br      *bufio.Reader
	mode    byte // 0 undetected, '[' array, '{' ndjson
	dec     *json.Decoder
	line    int
	elem    int
	pending []Item
	err     error // sticky fatal error or io.EOF
}

// NewReader returns a reader of the Atlas results in r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next item. Per-line and per-element problems come back
// as items with Err set (reading continues); the error return is io.EOF at
// the end, or a fatal error after which nothing more can be read (an I/O
// error, or broken JSON array syntax, which cannot be resynchronised; the
// message names the element).
func (r *Reader) Next() (Item, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return Item{}, r.err
		}
		r.fill()
	}
	it := r.pending[0]
	r.pending = r.pending[1:]
	return it, nil
}

func (r *Reader) fill() {
	if r.mode == 0 {
		c, err := r.firstByte()
		if err != nil {
			r.err = err
			return
		}
		switch c {
		case '[':
			r.mode = '['
			r.dec = json.NewDecoder(r.br)
			if _, err := r.dec.Token(); err != nil {
				r.err = fmt.Errorf("read array: %w", err)
				return
			}
		case '{':
			r.mode = '{'
		default:
			r.err = fmt.Errorf("input is neither a JSON array nor NDJSON (starts with %q)", c)
			return
		}
	}
	if r.mode == '[' {
		r.fillArray()
	} else {
		r.fillLine()
	}
}

// firstByte peeks the first non-whitespace byte (skipping a UTF-8 BOM).
func (r *Reader) firstByte() (byte, error) {
	if b, err := r.br.Peek(3); err == nil && bytes.Equal(b, []byte{0xef, 0xbb, 0xbf}) {
		r.br.Discard(3)
	}
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			if err == io.EOF {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("read: %w", err)
		}
		switch b[0] {
		case ' ', '\t', '\r':
			r.br.Discard(1)
		case '\n':
			r.line++
			r.br.Discard(1)
		default:
			return b[0], nil
		}
	}
}

// ErrTruncated marks input that ends in the middle of a JSON array (an
// interrupted download): what came before it was read.
var ErrTruncated = errors.New("truncated")

// isEOF reports whether err means the input ended where more was due.
func isEOF(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func (r *Reader) fillArray() {
	if !r.dec.More() {
		if _, err := r.dec.Token(); err != nil {
			if isEOF(err) {
				r.err = fmt.Errorf("%w: the array ends after element %d without its closing ']'", ErrTruncated, r.elem)
				return
			}
			r.err = fmt.Errorf("after element %d: %w", r.elem, err)
			return
		}
		r.err = io.EOF
		return
	}
	r.elem++
	var raw json.RawMessage
	if err := r.dec.Decode(&raw); err != nil {
		if isEOF(err) {
			r.err = fmt.Errorf("%w: the input ends inside element %d (reading stopped here)", ErrTruncated, r.elem)
			return
		}
		r.err = fmt.Errorf("element %d: %w (reading stopped here)", r.elem, err)
		return
	}
	r.add(raw, Item{Element: r.elem})
}

func (r *Reader) fillLine() {
	line, tooLong, err := r.readLine()
	if err != nil && err != io.EOF {
		r.err = fmt.Errorf("line %d: read: %w", r.line+1, err)
		return
	}
	if len(line) > 0 || tooLong {
		r.line++
		pos := Item{Line: r.line}
		switch {
		case tooLong:
			pos.Err = fmt.Errorf("line longer than %d bytes", MaxLineBytes)
			pos.Meta.Sub = -1
			r.pending = append(r.pending, pos)
		default:
			if t := bytes.TrimSpace(line); len(t) > 0 {
				r.add(t, pos)
			}
		}
	} else if err == nil {
		r.line++ // an empty line
	}
	if err == io.EOF {
		r.err = io.EOF
	}
}

// readLine returns the next line without its newline. A line longer than
// MaxLineBytes is consumed and reported as tooLong.
func (r *Reader) readLine() (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > MaxLineBytes+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			return bytes.TrimSuffix(buf, []byte{'\n'}), tooLong, nil
		default:
			return buf, tooLong, err
		}
	}
}

func (r *Reader) add(raw []byte, pos Item) {
	ps, err := ParseResult(raw)
	if err != nil {
		pos.Err = err
		pos.Meta.Sub = -1
		r.pending = append(r.pending, pos)
		return
	}
	if len(ps) == 0 {
		pos.Err = errors.New("empty resultset")
		pos.Meta.Sub = -1
		r.pending = append(r.pending, pos)
		return
	}
	for _, p := range ps {
		it := pos
		it.Parsed = p
		r.pending = append(r.pending, it)
	}
}
