package api

import (
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	writeJSONBody(w, v)
}

func writeJSONBody(w http.ResponseWriter, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

var discardLog = slog.New(slog.DiscardHandler)
