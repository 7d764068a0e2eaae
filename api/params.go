package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/anycatch/anycatch/catchment"
)

// Names as the schema constrains them; anything else is refused before it
// reaches the store.
var (
	targetNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	siteCodeRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)
	probeIDRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$`)
	countryRE    = regexp.MustCompile(`^[A-Za-z]{2}$`)
)

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// query wraps the URL query of one request and collects the first bad
// parameter, so handlers read parameters in a row and check once.
type query struct {
	r   *http.Request
	err *Error
}

func newQuery(r *http.Request) *query { return &query{r: r} }

func (q *query) fail(param, format string, a ...any) {
	if q.err == nil {
		q.err = invalid(param, format, a...)
	}
}

func (q *query) str(name string) string { return q.r.URL.Query().Get(name) }

func (q *query) time(name string, def time.Time) time.Time {
	v := q.str(name)
	if v == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		q.fail(name, "want an RFC 3339 time like 2026-11-21T05:00:00Z")
		return def
	}
	return t.UTC()
}

func (q *query) duration(name string, def, max time.Duration) time.Duration {
	v := q.str(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > max {
		q.fail(name, "want a positive duration like 15m, at most %s", max)
		return def
	}
	return d
}

func (q *query) int(name string, def, min, max int) int {
	v := q.str(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		q.fail(name, "want an integer from %d to %d", min, max)
		return def
	}
	return n
}

// bool reads true/false (also 1/0).
func (q *query) bool(name string, def bool) bool {
	switch q.str(name) {
	case "":
		return def
	case "true", "1":
		return true
	case "false", "0":
		return false
	}
	q.fail(name, "want true or false")
	return def
}

// movesOnly reads moves_only=true or its synonym kind=move (kind=all is
// the default): leave out probes' first observations.
func (q *query) movesOnly() bool {
	m := q.bool("moves_only", false)
	if q.enum("kind", "all", "all", "move") == "move" {
		m = true
	}
	return m
}

func (q *query) float(name string, def float64) float64 {
	v := q.str(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e6 {
		q.fail(name, "want a non-negative number")
		return def
	}
	return f
}

func (q *query) af() int {
	switch v := q.str("af"); v {
	case "":
		return 0
	case "4":
		return 4
	case "6":
		return 6
	}
	q.fail("af", "want 4 or 6")
	return 0
}

func (q *query) enum(name, def string, allowed ...string) string {
	v := q.str(name)
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	q.fail(name, "want one of %s", strings.Join(allowed, ", "))
	return def
}

// format is the requested output format: the format parameter, else an
// Accept header naming one of the alternatives, else json.
func (q *query) format(allowed ...string) string {
	if v := q.str("format"); v != "" {
		return q.enum("format", "json", append([]string{"json"}, allowed...)...)
	}
	accept := q.r.Header.Get("Accept")
	for _, a := range allowed {
		if ct, ok := formatTypes[a]; ok && strings.Contains(accept, ct) {
			return a
		}
	}
	return "json"
}

var formatTypes = map[string]string{"csv": "text/csv", "ndjson": "application/x-ndjson", "geojson": "application/geo+json"}

func (q *query) limit() int { return q.int("limit", defaultLimit, 1, maxLimit) }

// grouping reads group and regions.
func (q *query) grouping(regions map[string][]string) catchment.Grouping {
	g := catchment.Grouping{By: catchment.GroupBy(q.enum("group", "country", "country", "continent", "asn", "region"))}
	if g.By != catchment.GroupRegion {
		if q.str("regions") != "" {
			q.fail("regions", "only used with group=region")
		}
		return g
	}
	if v := q.str("regions"); v != "" {
		regions = map[string][]string{}
		for _, part := range strings.Split(v, ";") {
			name, list, ok := strings.Cut(part, "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" || len(name) > 64 || list == "" {
				q.fail("regions", "want name=CC,CC;name2=CC")
				return g
			}
			if strings.IndexFunc(name, unicode.IsControl) >= 0 || !utf8.ValidString(name) {
				q.fail("regions", "region name %q has control characters or is not UTF-8", name)
				return g
			}
			for _, cc := range strings.Split(list, ",") {
				cc = strings.TrimSpace(cc)
				if !countryRE.MatchString(cc) {
					q.fail("regions", "%q is not a two-letter country code", cc)
					return g
				}
				regions[name] = append(regions[name], cc)
			}
		}
	}
	if len(regions) == 0 {
		q.fail("regions", "group=region needs a region set: regions=name=CC,CC;name2=CC")
		return g
	}
	g.Regions = map[string]string{}
	for name, ccs := range regions {
		for _, cc := range ccs {
			g.Regions[strings.ToUpper(cc)] = name
		}
	}
	return g
}

// cursor decodes the opaque cursor parameter into v; an empty cursor
// leaves v unchanged and returns false.
func (q *query) cursor(v any) bool {
	c := q.str("cursor")
	if c == "" {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || json.Unmarshal(b, v) != nil {
		q.fail("cursor", "not a cursor this API returned")
		return false
	}
	return true
}

func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// targetParam validates the {target} path parameter.
func targetParam(r *http.Request) (string, error) {
	name := chi.URLParam(r, "target")
	if !targetNameRE.MatchString(name) {
		return "", invalid("target", "target names are 1-63 characters of a-z, 0-9, '.', '_' and '-'")
	}
	return name, nil
}

// decodeBody reads a JSON body of at most 1 MiB, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("body", "bad JSON body: %v", err)
	}
	return nil
}
