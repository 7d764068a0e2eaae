package api_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/internal/fixtures"
)

// TestLatencyDefaultKind: a target imported from RIPE Atlas has dns
// results only; /latency without kind= used to answer an empty identity
// report. It now reports the kind the target has and says which.
func TestLatencyDefaultKind(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.importAtlas("quad9", "quad9", filepath.Join(fixtures.AtlasDir(t), "msm-29083406-chaos-id-server.json"))
	const rng = "from=2021-02-10T00:00:00Z&to=2021-02-16T00:00:00Z"
	var rep struct {
		Kind  string
		Total struct{ Probes int }
	}
	r := e.do("GET", "/api/v1/targets/quad9/latency?"+rng, e.read, "")
	if err := json.Unmarshal(r.body, &rep); err != nil || r.status != 200 {
		t.Fatalf("latency: %d %v %s", r.status, err, r.body)
	}
	if rep.Kind != "dns" || rep.Total.Probes == 0 || r.header.Get("X-Anycatch-Kind") != "dns" {
		t.Errorf("default latency report: kind %q (header %q), %d probes; want dns with the imported probes",
			rep.Kind, r.header.Get("X-Anycatch-Kind"), rep.Total.Probes)
	}
	// An explicit kind is answered as asked, even when empty.
	r = e.do("GET", "/api/v1/targets/quad9/latency?kind=identity&"+rng, e.read, "")
	if err := json.Unmarshal(r.body, &rep); err != nil || rep.Kind != "identity" || rep.Total.Probes != 0 {
		t.Errorf("kind=identity: %v kind %q probes %d, want an empty identity report", err, rep.Kind, rep.Total.Probes)
	}
	// CSV says the kind in the header.
	r = e.do("GET", "/api/v1/targets/quad9/latency?format=csv&"+rng, e.read, "")
	if r.header.Get("X-Anycatch-Kind") != "dns" {
		t.Errorf("csv: X-Anycatch-Kind %q, want dns", r.header.Get("X-Anycatch-Kind"))
	}
}
