package measure

import (
	"fmt"
	"net/http"
)

// Error codes of error responses, the collector's (probe protocol) and
// the API's alike. Each code has exactly one HTTP status, in the one table
// [ErrorStatus] reads.
const (
	CodeInvalid      = "invalid"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeTooLarge     = "too_large"
	CodeRateLimited  = "rate_limited" // a client over its own limit
	CodeOverloaded   = "overloaded"   // the server over its capacity
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// errorStatus is the one table from error code to HTTP status.
var errorStatus = map[string]int{
	CodeInvalid:      http.StatusBadRequest,
	CodeUnauthorized: http.StatusUnauthorized,
	CodeForbidden:    http.StatusForbidden,
	CodeNotFound:     http.StatusNotFound,
	CodeConflict:     http.StatusConflict,
	CodeTooLarge:     http.StatusRequestEntityTooLarge,
	CodeRateLimited:  http.StatusTooManyRequests,
	CodeOverloaded:   http.StatusTooManyRequests,
	CodeUnavailable:  http.StatusServiceUnavailable,
	CodeInternal:     http.StatusInternalServerError,
}

// ErrorStatus returns the HTTP status of an error code; an unknown code is
// an internal error (500).
func ErrorStatus(code string) int {
	if s, ok := errorStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is the one error shape of the collector and the API: a code from
// the table, a message safe to show a client and, for invalid input, the
// parameter at fault. Each encodes it in its protocol's wire form.
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

// Status is the HTTP status of e's code.
func (e *Error) Status() int { return ErrorStatus(e.Code) }
