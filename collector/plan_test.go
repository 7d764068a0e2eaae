package collector

import (
	"strings"
	"testing"

	"github.com/anycatch/anycatch/catchment"
	"github.com/anycatch/anycatch/measure"
)

// TestBuildPlanValidatesTargets: the loader checks targets with the same
// Validate as the API and the admin CLI, reporting a target that is no
// longer valid while still measuring what it can of it.
func TestBuildPlanValidatesTargets(t *testing.T) {
	good := Target{Target: catchment.Target{ID: 1, Name: "k-root", Addr4: "198.18.53.53", IntervalSec: 300,
		Specs: []measure.Spec{{Kind: measure.KindPing}}}}
	bad := good
	bad.ID, bad.Name, bad.IntervalSec = 2, "slow", 5 // below the 10 s the schema allows
	p, errs := buildPlan([]Target{good, bad}, nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "target slow: interval_sec: want 10 to 86400 seconds") {
		t.Fatalf("errors %v, want one naming slow's interval", errs)
	}
	if len(p.msms) != 2 {
		t.Fatalf("%d measurements planned, want both targets' ping", len(p.msms))
	}
}
