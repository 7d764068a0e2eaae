package measure

import (
	"net/http"
	"testing"
)

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		code string
		want int
	}{
		{CodeInvalid, http.StatusBadRequest},
		{CodeUnauthorized, http.StatusUnauthorized},
		{CodeForbidden, http.StatusForbidden},
		{CodeNotFound, http.StatusNotFound},
		{CodeConflict, http.StatusConflict},
		{CodeTooLarge, http.StatusRequestEntityTooLarge},
		{CodeRateLimited, http.StatusTooManyRequests},
		{CodeOverloaded, http.StatusTooManyRequests},
		{CodeUnavailable, http.StatusServiceUnavailable},
		{CodeInternal, http.StatusInternalServerError},
		{"no_such_code", http.StatusInternalServerError},
	}
	for _, tc := range tests {
		e := &Error{Code: tc.code, Message: "m"}
		if got := e.Status(); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.code, got, tc.want)
		}
	}
	if len(errorStatus) != len(tests)-1 {
		t.Errorf("the table has %d codes, the test %d: test the new one", len(errorStatus), len(tests)-1)
	}
	if got := (&Error{Code: CodeInvalid, Message: "want 1 to 10", Param: "limit"}).Error(); got != "invalid: want 1 to 10 (limit)" {
		t.Errorf("Error() = %q", got)
	}
}
