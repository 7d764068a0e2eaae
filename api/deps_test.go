package api

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps package api off the database and GeoIP: it reaches the
// store only through the Store interface (api/pgstore adapts package store).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/anycatch/anycatch/api").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	forbidden := []string{"github.com/anycatch/anycatch/store", "github.com/jackc/pgx", "github.com/anycatch/anycatch/geo",
		"github.com/anycatch/anycatch/collector", "github.com/oschwald/"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("api depends on %s", dep)
			}
		}
	}
}
