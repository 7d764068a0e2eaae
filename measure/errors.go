package measure

import "fmt"

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

// errorStatus is the one table from error code to HTTP status. The
// statuses are numbers, not net/http's names: importing net/http here
// would link it into catchment and atlas, which must not speak HTTP
// (internal/archtest).
var errorStatus = map[string]int{
	CodeInvalid:      400, // Bad Request
	CodeUnauthorized: 401, // Unauthorized
	CodeForbidden:    403, // Forbidden
	CodeNotFound:     404, // Not Found
	CodeConflict:     409, // Conflict
	CodeTooLarge:     413, // Request Entity Too Large
	CodeRateLimited:  429, // Too Many Requests
	CodeOverloaded:   429, // Too Many Requests
	CodeUnavailable:  503, // Service Unavailable
	CodeInternal:     500, // Internal Server Error
}

// ErrorStatus returns the HTTP status of an error code; an unknown code is
// an internal error (500).
func ErrorStatus(code string) int {
	if s, ok := errorStatus[code]; ok {
		return s
	}
	return 500
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
