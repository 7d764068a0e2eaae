package collector

import (
	"encoding/json"
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
