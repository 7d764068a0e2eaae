package collector

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// errorBody is the JSON every error response carries.
type errorBody struct {
	Error   string `json:"error"`   // code: invalid, unauthorized, forbidden, not_found, too_large, overloaded, unavailable, internal
	Message string `json:"message"` // for humans
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: code, Message: msg})
}

func writeRetry(w http.ResponseWriter, status int, after time.Duration, code, msg string) {
	secs := int(after.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, status, code, msg)
}

// writeJSON encodes v before writing anything, so that an encoding
// failure is a logged 500 with the error shape, never a 200 with an empty
// body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("collector: encode response", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the response could not be encoded")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // the client went away: nobody to tell
}
