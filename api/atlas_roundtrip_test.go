package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/atlas/importer"
	"github.com/anycatch/anycatch/internal/fixtures"
)

// importAtlas imports an Atlas file into target name of e's database.
func (e *env) importAtlas(name, service, path string) {
	e.t.Helper()
	ctx := context.Background()
	prep, err := importer.PrepareTarget(ctx, e.db, importer.TargetOptions{Name: name, Create: true, RulesFile: importer.BuiltinRules, Service: service})
	if err != nil {
		e.t.Fatalf("prepare target: %v", err)
	}
	var errs bytes.Buffer
	st, err := importer.ImportFile(ctx, importer.Options{Store: e.db, Target: *prep.Target, Identifier: prep.Identifier, Errors: &errs}, path)
	if err != nil || st.Results == 0 || errs.Len() > 0 {
		e.t.Fatalf("import %s: %v (%s)\n%s", path, err, st.Summary(), errs.String())
	}
}

// TestAtlasExportImportRoundTrip: results imported from real Atlas output,
// exported with format=atlas, imported into a second server and exported
// again give the same bytes; the exported JSON is a plain array (what Atlas
// serves and the importer reads), NDJSON with Accept: application/x-ndjson.
func TestAtlasExportImportRoundTrip(t *testing.T) {
	fx := filepath.Join(fixtures.AtlasDir(t), "msm-29083406-chaos-id-server.json")
	const from = "2000-01-01T00:00:00Z"
	exportAll := func(e *env) []byte {
		t.Helper()
		r := e.do("GET", "/api/v1/results?format=atlas&target=quad9&from="+from, e.read, "", "Accept", "application/x-ndjson")
		if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" || len(r.body) == 0 {
			t.Fatalf("atlas ndjson export: %d %s %.300s", r.status, r.header.Get("Content-Type"), r.body)
		}
		return r.body
	}
	a := newEnv(t, api.Config{})
	a.importAtlas("quad9", "quad9", fx)
	first := exportAll(a)
	if n := bytes.Count(first, []byte("\n")); n < 50 {
		t.Fatalf("exported %d results, want the fixture's", n)
	}
	if bytes.Contains(first, []byte("socket: socket")) {
		t.Errorf("first export already has a doubled socket prefix")
	}

	// The paged form is a bare array of the same objects.
	r := a.do("GET", "/api/v1/results?format=atlas&target=quad9&limit=3&from="+from, a.read, "")
	var page []json.RawMessage
	if err := json.Unmarshal(r.body, &page); err != nil || len(page) != 3 || r.header.Get("X-Next-Cursor") == "" {
		t.Fatalf("format=atlas page: %v, %d elements, cursor %q: %.200s", err, len(page), r.header.Get("X-Next-Cursor"), r.body)
	}
	if line, _, _ := bytes.Cut(first, []byte("\n")); !bytes.Equal(page[0], line) {
		t.Errorf("array element differs from the NDJSON line:\n%s\n%s", page[0], line)
	}

	file := filepath.Join(t.TempDir(), "export.ndjson")
	if err := os.WriteFile(file, first, 0o600); err != nil {
		t.Fatal(err)
	}
	b := newEnv(t, api.Config{})
	b.importAtlas("quad9", "quad9", file)
	second := exportAll(b)
	if !bytes.Equal(first, second) {
		fl, sl := bytes.Split(first, []byte("\n")), bytes.Split(second, []byte("\n"))
		for i := range min(len(fl), len(sl)) {
			if !bytes.Equal(fl[i], sl[i]) {
				t.Fatalf("round trip differs at line %d (of %d / %d):\nfirst  %s\nsecond %s", i+1, len(fl), len(sl), fl[i], sl[i])
			}
		}
		t.Fatalf("round trip differs in length: %d vs %d lines", len(fl), len(sl))
	}
}
