package collector_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
)

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func newServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }
