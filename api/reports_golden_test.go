package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/reports from the current output")

// goldenFullMax is the size up to which a report's whole output is kept
// in the golden files, to be read and diffed; larger ones are pinned by
// their digest in the index only.
const goldenFullMax = 4 << 10

// TestReportsGolden renders every report of forEachReport (catchment and
// latency, JSON and CSV, every case, grouping, threshold and family) and
// compares it with testdata/reports: index.golden lists every report's
// size and SHA-256; <kind>-<case>.golden hold the whole output of the
// reports up to goldenFullMax bytes, so a change shows as a diff. The
// files were written from the unoptimized reference implementation's
// output (pinned by a digest before, 82cceaad…), which the optimized code
// matched byte for byte. Regenerate only when the output is meant to
// change:
//
//	go test ./api -run TestReportsGolden -update
func TestReportsGolden(t *testing.T) {
	var index bytes.Buffer
	full := map[string]*bytes.Buffer{} // file -> sections
	outputs := map[string][]byte{}
	n := 0
	forEachReport(func(name string, render func(io.Writer)) {
		var b bytes.Buffer
		render(&b)
		sum := sha256.Sum256(b.Bytes())
		fmt.Fprintf(&index, "%s %d %s\n", name, b.Len(), hex.EncodeToString(sum[:]))
		if b.Len() <= goldenFullMax {
			file := goldenFile(name)
			if full[file] == nil {
				full[file] = &bytes.Buffer{}
			}
			fmt.Fprintf(full[file], "=== %s\n%s", name, b.Bytes())
			if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
				full[file].WriteString("\n")
			}
		}
		outputs[name] = b.Bytes()
		n++
	})
	if n < 800 {
		t.Fatalf("only %d reports rendered", n)
	}
	files := map[string][]byte{"index.golden": index.Bytes()}
	for f, b := range full {
		files[f] = b.Bytes()
	}
	dir := filepath.Join("testdata", "reports")
	if *updateGolden {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(dir, "*.golden"))
		for _, f := range old {
			os.Remove(f)
		}
		for f, b := range files {
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("wrote %d golden files for %d reports", len(files), n)
		return
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for f := range files {
			if !yield(f) {
				return
			}
		}
	})
	for _, f := range names {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("%v (run with -update to write the golden files)", err)
			continue
		}
		if got := files[f]; !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file:\n%s", f, lineDiff(string(want), string(got)))
		}
	}
	if extra, _ := filepath.Glob(filepath.Join(dir, "*.golden")); len(extra) != len(files) {
		t.Errorf("%d golden files in %s, the reports make %d: stale files?", len(extra), dir, len(files))
	}
}

// goldenFile is the file holding report name's full output: by kind and
// case ("latency/small/..." -> "latency-small.golden").
func goldenFile(name string) string {
	parts := strings.SplitN(name, "/", 3)
	return parts[0] + "-" + parts[1] + ".golden"
}

// lineDiff shows where got first differs from want, line by line, with
// three lines of context, and how many lines differ in all.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	first, differ := -1, 0
	for i := range max(len(w), len(g)) {
		if i >= len(w) || i >= len(g) || w[i] != g[i] {
			differ++
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		return "(same lines)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d lines differ; first at line %d:\n", differ, first+1)
	line := func(prefix string, lines []string, i int) {
		if i < len(lines) {
			l := lines[i]
			if len(l) > 300 {
				l = l[:300] + "…"
			}
			fmt.Fprintf(&b, "%s%5d %s\n", prefix, i+1, l)
		}
	}
	for i := max(0, first-3); i < first; i++ {
		line(" ", w, i)
	}
	for i := first; i < first+4; i++ {
		line("-", w, i)
	}
	for i := first; i < first+4; i++ {
		line("+", g, i)
	}
	return b.String()
}

func TestLineDiff(t *testing.T) {
	got := lineDiff("a\nb\nc\nd\n", "a\nb\nX\nd\n")
	if !strings.HasPrefix(got, "1 lines differ; first at line 3:\n") || !strings.Contains(got, "-    3 c\n") || !strings.Contains(got, "+    3 X\n") {
		t.Errorf("lineDiff:\n%s", got)
	}
}
