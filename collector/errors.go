package collector

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/anycatch/anycatch/measure"
)

// errorBody is the probe protocol's wire form of a [measure.Error]: flat,
// the code under "error" (probes already deployed read this shape).
type errorBody struct {
	Error   string `json:"error"`   // a measure.Code* error code
	Message string `json:"message"` // for humans
}

// writeError answers with code's status from the one code -> status
// table (measure.ErrorStatus).
func writeError(w http.ResponseWriter, code, msg string) {
	writeErrorStatus(w, measure.ErrorStatus(code), code, msg)
}

// writeErrorStatus is writeError with a status of the caller's: only for
// an answer whose status the protocol fixed apart from the table (415
// with code invalid for an unsupported content encoding).
func writeErrorStatus(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: code, Message: msg})
}

// writeRetry is writeError with a Retry-After of after (at least 1 s).
func writeRetry(w http.ResponseWriter, after time.Duration, code, msg string) {
	secs := int(after.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, code, msg)
}

// writeJSON encodes v before writing anything, so that an encoding
// failure is a logged 500 with the error shape, never a 200 with an empty
// body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("collector: encode response", "err", err)
		writeError(w, measure.CodeInternal, "the response could not be encoded")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // the client went away: nobody to tell
}
