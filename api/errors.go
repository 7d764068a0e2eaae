package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Error codes. Each maps to exactly one HTTP status in [codeStatus].
const (
	CodeInvalid      = "invalid"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeRateLimited  = "rate_limited"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// codeStatus is the one table from error code to HTTP status.
var codeStatus = map[string]int{
	CodeInvalid:      http.StatusBadRequest,
	CodeUnauthorized: http.StatusUnauthorized,
	CodeForbidden:    http.StatusForbidden,
	CodeNotFound:     http.StatusNotFound,
	CodeConflict:     http.StatusConflict,
	CodeRateLimited:  http.StatusTooManyRequests,
	CodeUnavailable:  http.StatusServiceUnavailable,
	CodeInternal:     http.StatusInternalServerError,
}

// Error is an API error: a code from the table, a message safe to show a
// client, and for invalid input the parameter at fault.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Param)
	}
	return e.Code + ": " + e.Message
}

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
	status, ok := codeStatus[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, errorBody{Error: e})
}

// writeJSON answers status with v. v is encoded before anything is
// written: when that fails (encoding/json refuses NaN and infinities) the
// answer is a logged 500 with the error shape, never a 200 with an empty
// or truncated body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		slog.Error("api: encode response", "type", fmt.Sprintf("%T", v), "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		_ = enc.Encode(errorBody{Error: &Error{Code: CodeInternal, Message: "internal error: the response could not be encoded"}}) // plain strings: cannot fail
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away: nobody to tell
}

var discardLog = slog.New(slog.DiscardHandler)
