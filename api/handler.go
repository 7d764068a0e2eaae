package api

import (
	"errors"
	"net/http"
)

// apiFunc is a handler that returns its answer instead of writing it:
// a value to send as JSON with 200, a [reply] for another status or
// extra headers, or a [stream] that writes the body itself (CSV, GeoJSON,
// NDJSON exports, reports encoded as they are written). An error is
// answered by [Server.writeError] with the status of its code, so a
// handler fails with one `return nil, err` (as Prometheus' web/api/v1
// wraps its apiFuncs).
//
// Long-lived streams (server-sent events, NDJSON follow) stay plain
// http.HandlerFuncs, or are returned as a stream once the request is
// validated.
type apiFunc func(r *http.Request) (any, error)

// reply is an answer other than 200 with a JSON body.
type reply struct {
	status int
	header http.Header // set before the status is written
	body   any         // encoded as JSON; nil: no body (204)
}

// created answers 201 with v.
func created(v any) reply { return reply{status: http.StatusCreated, body: v} }

// noContent answers 204 without a body.
var noContent = reply{status: http.StatusNoContent}

// stream writes a whole response: status, headers and body.
type stream func(w http.ResponseWriter)

// headerError is an error answered with extra headers (Retry-After).
type headerError struct {
	error
	header http.Header
}

func (e *headerError) Unwrap() error { return e.error }

// withHeader returns err answered with header key set to value.
func withHeader(err error, key, value string) error {
	h := http.Header{}
	h.Set(key, value)
	return &headerError{error: err, header: h}
}

// wrap turns an apiFunc into the http.HandlerFunc the router serves.
func (s *Server) wrap(f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			var he *headerError
			if errors.As(err, &he) {
				copyHeader(w.Header(), he.header)
			}
			s.writeError(w, r, err)
			return
		}
		switch v := v.(type) {
		case stream:
			v(w)
		case reply:
			copyHeader(w.Header(), v.header)
			if v.body == nil {
				w.WriteHeader(v.status)
				return
			}
			writeJSON(w, v.status, v.body)
		default:
			writeJSON(w, http.StatusOK, v)
		}
	}
}
