package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/api/pgstore"
	"github.com/anycatch/anycatch/collector"
	cpg "github.com/anycatch/anycatch/collector/pgstore"
	"github.com/anycatch/anycatch/internal/fixtures"
	"github.com/anycatch/anycatch/measure"
)

// docCurl is one curl command of docs/api.md.
type docCurl struct {
	line    int
	method  string
	url     string
	headers [][2]string
	body    string
	jq      string // the jq filter the output is piped to, if any
}

// curlExamples extracts every curl command from docs/api.md: those in
// indented code blocks (joined over trailing backslashes) and those in
// inline code. Shell variables are expanded from vars; an assignment
// NAME=$(date …) in a block sets NAME to a time a minute ago.
func curlExamples(t *testing.T, doc string, vars map[string]string, now time.Time) []docCurl {
	t.Helper()
	var cmds []docCurl
	assign := regexp.MustCompile(`^([A-Za-z_]+)=(.*)$`)
	sc := bufio.NewScanner(strings.NewReader(doc))
	var pending string
	pendingLine, n := 0, 0
	inline := regexp.MustCompile("`(curl [^`]+)`")
	for sc.Scan() {
		n++
		line := sc.Text()
		if !strings.HasPrefix(line, "    ") {
			for _, m := range inline.FindAllStringSubmatch(line, -1) {
				if !strings.Contains(m[1], "/") {
					continue // "curl --compressed" names an option, it is no example
				}
				// "…/admin/keys" in prose stands for the API base.
				cmds = append(cmds, parseCurl(t, n, strings.ReplaceAll(m[1], "…/", "$API/"), vars))
			}
			continue
		}
		code := strings.TrimSpace(line)
		if i := strings.Index(code, "   #"); i >= 0 {
			code = strings.TrimSpace(code[:i]) // a trailing comment
		}
		if pending != "" {
			pending += " " + strings.TrimSuffix(code, "\\")
		} else if strings.HasPrefix(code, "curl ") {
			pending, pendingLine = strings.TrimSuffix(code, "\\"), n
		} else if m := assign.FindStringSubmatch(code); m != nil && !strings.HasPrefix(m[1], "KEY") && m[1] != "API" && m[1] != "T" {
			if strings.HasPrefix(m[2], "$(date") {
				vars[m[1]] = now.Add(-time.Minute).Format(time.RFC3339)
			} else {
				vars[m[1]] = m[2]
			}
		}
		if pending != "" && !strings.HasSuffix(code, "\\") {
			cmds = append(cmds, parseCurl(t, pendingLine, pending, vars))
			pending = ""
		}
	}
	return cmds
}

// shellWords splits a command line the way sh would for these examples:
// single quotes literal, double quotes with $VAR expansion, a pipe ends
// the command (its jq filter is returned), "> file" is dropped.
func shellWords(t *testing.T, s string, vars map[string]string) (words []string, jq string) {
	t.Helper()
	expand := func(s string) string {
		return regexp.MustCompile(`\$([A-Za-z_]+)`).ReplaceAllStringFunc(s, func(v string) string {
			val, ok := vars[v[1:]]
			if !ok {
				t.Fatalf("docs/api.md uses $%s, which the test does not know", v[1:])
			}
			return val
		})
	}
	var cur strings.Builder
	have := false
	flush := func() {
		if have {
			words = append(words, cur.String())
		}
		cur.Reset()
		have = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unbalanced ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			have, i = true, i+1+j
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				t.Fatalf("unbalanced \" in %q", s)
			}
			cur.WriteString(expand(s[i+1 : i+1+j]))
			have, i = true, i+1+j
		case c == ' ' || c == '\t':
			flush()
		case c == '|':
			flush()
			rest := strings.TrimSpace(s[i+1:])
			if !strings.HasPrefix(rest, "jq ") {
				t.Fatalf("example pipes into something other than jq: %q", rest)
			}
			js, _ := shellWords(t, rest, vars)
			if len(js) > 1 {
				jq = js[len(js)-1]
			}
			return words, jq
		case c == '>':
			flush()
			return words, ""
		case c == '$':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z') {
				j++
			}
			cur.WriteString(expand(s[i:j]))
			have, i = true, j-1
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	flush()
	return words, ""
}

func parseCurl(t *testing.T, line int, cmd string, vars map[string]string) docCurl {
	t.Helper()
	words, jq := shellWords(t, cmd, vars)
	c := docCurl{line: line, method: "GET", jq: jq}
	for i := 1; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "--compressed":
			// Go's client asks for and undoes gzip by itself.
		case strings.HasPrefix(w, "--"):
			t.Fatalf("docs/api.md:%d: curl option %s is not understood by this test", line, w)
		case strings.HasPrefix(w, "-"):
			for _, o := range w[1:] {
				switch o {
				case 's', 'N': // silent; no buffering (streams are read whole)
				case 'H', 'X', 'd', 'o':
					i++
					if i >= len(words) {
						t.Fatalf("docs/api.md:%d: -%c without a value", line, o)
					}
					switch o {
					case 'H':
						k, v, _ := strings.Cut(words[i], ":")
						c.headers = append(c.headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
					case 'X':
						c.method = words[i]
					case 'd':
						c.body = words[i]
						if c.method == "GET" {
							c.method = "POST"
						}
					}
				default:
					t.Fatalf("docs/api.md:%d: curl option -%c is not understood by this test", line, o)
				}
			}
		default:
			c.url = w
		}
	}
	if c.url == "" {
		t.Fatalf("docs/api.md:%d: no URL in %q", line, cmd)
	}
	return c
}

// TestDocsAPIExamples runs every curl example of docs/api.md against a
// seeded server (target k-root, as in the make demo lab): each must answer
// 2xx, with a body of the shape api/openapi.json documents for that route
// (no member the document does not list, every required one present), and
// every field a jq filter of the example reads must exist in the answer.
func TestDocsAPIExamples(t *testing.T) {
	e := newEnv(t, api.Config{})
	// The examples ask for fixed times (2026-11-14 … 2026-11-21): the seed
	// data is placed just before the last of them so that they find it.
	e.now = time.Date(2026, 11, 20, 18, 30, 0, 0, time.UTC)
	// On-demand examples run against a live channel whose measurements
	// finish at once (every selected probe offline): the shapes are the
	// API's own; $MSM names one started beforehand.
	live := finishedLive{&fakeLive{connected: []string{"p-1", "p-2", "p-3", "p-4"}}}
	e.srv.Config.Handler = api.New(api.Config{Store: pgstore.New(e.db), Now: func() time.Time { return e.now },
		Tokens: pgstore.Tokens{Service: collector.Tokens{Store: cpg.New(e.db)}}, Live: live})
	e.seed()
	root := fixtures.ModuleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	spec := loadSpec(t, filepath.Join(root, "api", "openapi.json"))
	// T is the doc's target (make demo's "lab"); here the seeded one.
	msm, err := live.StartMeasurement(api.LiveRequest{Target: e.target.Name, Probes: []string{"p-1"}})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"KEY": e.read, "API": e.srv.URL + "/api/v1", "T": e.target.Name, "MSM": msm.Status(0).ID}
	cmds := curlExamples(t, string(doc), vars, e.now)
	if len(cmds) < 8 {
		t.Fatalf("found %d curl examples in docs/api.md, want every one (at least 8)", len(cmds))
	}
	for _, c := range cmds {
		t.Run(fmt.Sprintf("line%d", c.line), func(t *testing.T) {
			req, err := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range c.headers {
				req.Header.Set(h[0], h[1])
			}
			path := strings.TrimPrefix(req.URL.Path, "/api/v1")
			if strings.HasPrefix(path, "/admin/") {
				// Admin examples are written without the header; they need
				// an admin key.
				req.Header.Set("Authorization", "Bearer "+e.admin)
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body []byte
			body, err = readAll(res)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode/100 != 2 {
				t.Fatalf("docs/api.md:%d: %s %s: %d %s", c.line, c.method, req.URL, res.StatusCode, body)
			}
			op := spec.operation(t, c.method, req.URL.Path)
			ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
			schema, ok := op.response(res.StatusCode, ct)
			if !ok {
				t.Fatalf("docs/api.md:%d: %s %s answered %d %s, which openapi.json does not document", c.line, c.method, req.URL.Path, res.StatusCode, ct)
			}
			var values []any
			switch ct {
			case "application/json", "application/geo+json":
				var v any
				if err := json.Unmarshal(body, &v); err != nil {
					t.Fatalf("docs/api.md:%d: not JSON: %v", c.line, err)
				}
				values = append(values, v)
				spec.validate(t, fmt.Sprintf("docs/api.md:%d", c.line), v, schema)
			case "application/x-ndjson":
				if len(body) == 0 {
					t.Fatalf("docs/api.md:%d: the stream is empty: the example shows nothing", c.line)
				}
				for i, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
					var v any
					if err := json.Unmarshal([]byte(l), &v); err != nil {
						t.Fatalf("docs/api.md:%d: ndjson line %d: %v", c.line, i+1, err)
					}
					spec.validate(t, fmt.Sprintf("docs/api.md:%d line %d", c.line, i+1), v, map[string]any{"$ref": "#/components/schemas/Result"})
				}
			case "text/csv":
				if !strings.Contains(string(body), ",") {
					t.Errorf("docs/api.md:%d: CSV without a header: %q", c.line, body)
				}
			}
			if c.jq != "" {
				// A field the filter reads must be in the answer or at
				// least documented (next_cursor is absent on a last page).
				keys := map[string]bool{}
				for _, v := range values {
					collectKeys(v, keys)
				}
				spec.schemaKeys(schema, keys, 0)
				for _, m := range regexp.MustCompile(`\.([a-z_]+)`).FindAllStringSubmatch(c.jq, -1) {
					if !keys[m[1]] {
						t.Errorf("docs/api.md:%d: the jq filter reads .%s, which the answer does not have", c.line, m[1])
					}
				}
			}
		})
	}
}

func readAll(res *http.Response) ([]byte, error) {
	var b strings.Builder
	_, err := bufio.NewReader(res.Body).WriteTo(&b)
	return []byte(b.String()), err
}

func collectKeys(v any, keys map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			keys[k] = true
			collectKeys(vv, keys)
		}
	case []any:
		for _, vv := range x {
			collectKeys(vv, keys)
		}
	}
}

// openAPI is the subset of an OpenAPI 3.1 document the test reads.
type openAPI struct {
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		Schemas map[string]map[string]any `json:"schemas"`
	} `json:"components"`
}

type operation struct {
	Responses map[string]struct {
		Content map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

func loadSpec(t *testing.T, path string) *openAPI {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s openAPI
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// operation finds the operation whose path template matches path.
func (s *openAPI) operation(t *testing.T, method, path string) operation {
	t.Helper()
	var tmpls []string
	for p := range s.Paths {
		tmpls = append(tmpls, p)
	}
	sort.Strings(tmpls)
	for _, p := range tmpls {
		re := "^" + regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$"
		if regexp.MustCompile(re).MatchString(path) {
			if op, ok := s.Paths[p][strings.ToLower(method)]; ok {
				return op
			}
		}
	}
	t.Fatalf("openapi.json documents no %s %s", method, path)
	return operation{}
}

func (o operation) response(status int, ct string) (map[string]any, bool) {
	r, ok := o.Responses[fmt.Sprint(status)]
	if !ok {
		return nil, false
	}
	c, ok := r.Content[ct]
	return c.Schema, ok
}

// validate checks v against the JSON Schema subset openapi.json uses:
// $ref, type (a name or a list), properties, required, items, enum and
// additionalProperties. A member that the schema does not list is an
// error: the answer has a shape the documentation does not describe.
func (s *openAPI) validate(t *testing.T, where string, v any, schema map[string]any) {
	t.Helper()
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		sc, ok := s.Components.Schemas[name]
		if !ok {
			t.Errorf("%s: unknown schema %s", where, ref)
			return
		}
		s.validate(t, where, v, sc)
		return
	}
	var types []string
	switch ty := schema["type"].(type) {
	case string:
		types = []string{ty}
	case []any:
		for _, x := range ty {
			types = append(types, x.(string))
		}
	}
	if len(types) > 0 {
		got := jsonType(v)
		okType := false
		for _, ty := range types {
			okType = okType || ty == got || ty == "number" && got == "integer"
		}
		if !okType {
			t.Errorf("%s: %s where the document says %v", where, got, types)
			return
		}
	}
	if enum, ok := schema["enum"].([]any); ok && v != nil {
		found := false
		for _, x := range enum {
			found = found || fmt.Sprint(x) == fmt.Sprint(v)
		}
		if !found {
			t.Errorf("%s: %v is not one of %v", where, v, enum)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asList(schema["required"]) {
			if _, ok := x[r]; !ok {
				t.Errorf("%s: required member %q missing", where, r)
			}
		}
		addl, hasAddl := schema["additionalProperties"]
		for k, vv := range x {
			ps, ok := props[k].(map[string]any)
			switch {
			case ok:
				s.validate(t, where+"."+k, vv, ps)
			case hasAddl && addl != false:
				if as, ok := addl.(map[string]any); ok {
					s.validate(t, where+"."+k, vv, as)
				}
			case props == nil && !hasAddl:
				// A free-form object (no properties listed).
			default:
				t.Errorf("%s: member %q is not in the documented shape", where, k)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, vv := range x {
				s.validate(t, fmt.Sprintf("%s[%d]", where, i), vv, items)
			}
		}
	}
}

// schemaKeys adds the member names schema documents, to a few levels.
func (s *openAPI) schemaKeys(schema map[string]any, keys map[string]bool, depth int) {
	if depth > 4 || schema == nil {
		return
	}
	if ref, ok := schema["$ref"].(string); ok {
		s.schemaKeys(s.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")], keys, depth+1)
		return
	}
	if props, ok := schema["properties"].(map[string]any); ok {
		for k, v := range props {
			keys[k] = true
			if m, ok := v.(map[string]any); ok {
				s.schemaKeys(m, keys, depth+1)
			}
		}
	}
	if items, ok := schema["items"].(map[string]any); ok {
		s.schemaKeys(items, keys, depth+1)
	}
}

func asList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// finishedLive is a fakeLive whose measurements end as they start: every
// selected probe is reported offline.
type finishedLive struct{ *fakeLive }

func (f finishedLive) StartMeasurement(req api.LiveRequest) (api.LiveMeasurement, error) {
	m, err := f.fakeLive.StartMeasurement(req)
	if err != nil {
		return nil, err
	}
	fm := m.(*fakeMsm)
	for i, p := range req.Probes {
		fm.event(measure.OnDemandEvent{At: time.Now().UTC(), Probe: p, Outcome: measure.OutcomeOffline}, i == len(req.Probes)-1)
	}
	return m, nil
}
