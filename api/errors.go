package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/anycatch/anycatch/measure"
)

// Error codes, the collector's and the API's: each maps to exactly one
// HTTP status in the one table, [measure.ErrorStatus].
const (
	CodeInvalid      = measure.CodeInvalid
	CodeUnauthorized = measure.CodeUnauthorized
	CodeForbidden    = measure.CodeForbidden
	CodeNotFound     = measure.CodeNotFound
	CodeConflict     = measure.CodeConflict
	CodeRateLimited  = measure.CodeRateLimited
	CodeUnavailable  = measure.CodeUnavailable
	CodeInternal     = measure.CodeInternal
)

// Error is an API error: a code from the table, a message safe to show a
// client, and for invalid input the parameter at fault (the error shape
// the collector shares).
type Error = measure.Error

// Sentinel errors a [Store] returns; anything else is internal.
var (
	ErrNotFound = &Error{Code: CodeNotFound, Message: "not found"}
	ErrConflict = &Error{Code: CodeConflict, Message: "already exists or still in use"}
)

func invalid(param, format string, a ...any) *Error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, a...), Param: param}
}

func notFound(what string) *Error {
	return &Error{Code: CodeNotFound, Message: what + " not found"}
}

// errorBody is the wire shape of every error response.
type errorBody struct {
	Error *Error `json:"error"`
}

// writeError answers with err's code and status. Errors that are not an
// *Error are internal: logged in full, answered with a generic message.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		s.log.Error("api internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Code: CodeInternal, Message: "internal error"}
	}
	writeJSON(w, e.Status(), errorBody{Error: e})
}

// writeJSON answers status with v. v is encoded before anything is
// written: when that fails (encoding/json refuses NaN and infinities) the
// answer is a logged 500 with the error shape, never a 200 with an empty
// or truncated body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, "application/json", v)
}

// writeJSONAs is writeJSON with a JSON media type of the caller's (e.g.
// application/geo+json); the error answer is always application/json.
func writeJSONAs(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		slog.Error("api: encode response", "type", fmt.Sprintf("%T", v), "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		_ = enc.Encode(errorBody{Error: &Error{Code: CodeInternal, Message: "internal error: the response could not be encoded"}}) // plain strings: cannot fail
		contentType = "application/json"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away: nobody to tell
}

var discardLog = slog.New(slog.DiscardHandler)
