package importer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/anycatch/anycatch/atlas"
	"github.com/anycatch/anycatch/atlas/importer"
	"github.com/anycatch/anycatch/catchment"
)

const goodRecord = `{"type":"dns","fw":5000,"prb_id":1,"msm_id":2,"timestamp":1700000000,"af":4,"dst_addr":"198.51.100.53","error":{"timeout":5000}}`

// TestTruncatedFileFails: a JSON array cut off mid-element (an interrupted
// download) stores what came before but fails with ErrIncomplete saying
// "truncated", unless Partial is set.
func TestTruncatedFileFails(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	prep, err := importer.PrepareTarget(ctx, db, importer.TargetOptions{Name: "t", Create: true, Addrs: []string{"198.51.100.53"}})
	if err != nil {
		t.Fatal(err)
	}
	second := strings.Replace(goodRecord, `"prb_id":1`, `"prb_id":3`, 1)
	in := "[" + goodRecord + "," + second[:60]
	opts := importer.Options{Store: db, Target: *prep.Target}
	st, err := importer.Import(ctx, opts, "cut.json", strings.NewReader(in), -1)
	if !errors.Is(err, importer.ErrIncomplete) || !errors.Is(err, atlas.ErrTruncated) || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "--partial") {
		t.Errorf("err = %v, want ErrIncomplete saying truncated and naming --partial", err)
	}
	if st.New != 1 {
		t.Errorf("stored %d results, want the 1 before the break", st.New)
	}
	opts.Partial = true
	if _, err := importer.Import(ctx, opts, "cut.json", strings.NewReader(in), -1); err != nil {
		t.Errorf("with Partial: err = %v, want nil", err)
	}
}

// TestRuleCountGrammar: "the 1 rule", not "the 1 rules".
func TestRuleCountGrammar(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	prep, err := importer.PrepareTarget(ctx, db, importer.TargetOptions{Name: "t", Create: true, Addrs: []string{"198.51.100.53"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ReplaceRules(ctx, prep.Target.ID, []catchment.Rule{{Source: "any", Match: "exact", Pattern: "a", Site: "ams"}}); err != nil {
		t.Fatal(err)
	}
	prep, err = importer.PrepareTarget(ctx, db, importer.TargetOptions{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if notes := strings.Join(prep.Notes, "\n"); !strings.Contains(notes, `the 1 rule of target "t"`) {
		t.Errorf("notes = %q, want \"the 1 rule of target\"", notes)
	}
}
