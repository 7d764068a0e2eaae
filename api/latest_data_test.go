package api_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/internal/fixtures"
)

// TestLatestDataAtAfterImport: after importing history only, the catchment
// "now" is empty; the report says when the newest data is, and asking at
// that time shows every probe of the measurement, those with only socket
// errors or timeouts as unreachable (RIPE Atlas msm 29083406: 96 probes).
func TestLatestDataAtAfterImport(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.importAtlas("quad9", "quad9", filepath.Join(fixtures.AtlasDir(t), "msm-29083406-chaos-id-server.json"))
	type report struct {
		LatestDataAt *time.Time `json:"latest_data_at"`
		Probes       []struct {
			Probe, State string
		}
		Total struct{ Probes, Unreachable int }
	}
	var now report
	r := e.do("GET", "/api/v1/targets/quad9/catchment", e.read, "")
	if err := json.Unmarshal(r.body, &now); err != nil || r.status != 200 {
		t.Fatalf("catchment: %d %v %s", r.status, err, r.body)
	}
	if len(now.Probes) != 0 || now.LatestDataAt == nil {
		t.Fatalf("catchment now: %d probes, latest_data_at %v; want none live and a latest_data_at", len(now.Probes), now.LatestDataAt)
	}
	if want := time.Date(2021, 2, 15, 0, 0, 0, 0, time.UTC); now.LatestDataAt.Before(want) || now.LatestDataAt.After(want.Add(24*time.Hour)) {
		t.Errorf("latest_data_at = %v, want on 2021-02-15 (the fixture's last results)", now.LatestDataAt)
	}
	var then report
	at := now.LatestDataAt.Format(time.RFC3339)
	r = e.do("GET", "/api/v1/targets/quad9/catchment?window=168h&at="+at, e.read, "")
	if err := json.Unmarshal(r.body, &then); err != nil || r.status != 200 {
		t.Fatalf("catchment at %s: %d %v %s", at, r.status, err, r.body)
	}
	t.Logf("at %s: %d probes, %d unreachable", at, then.Total.Probes, then.Total.Unreachable)
	// Every probe of the measurement is there (96): the two whose only
	// results were socket errors were missing before; they are unreachable.
	if then.Total.Probes != 96 || then.Total.Unreachable != 2 {
		t.Errorf("catchment at %s: %d probes, %d unreachable; want all 96, 2 unreachable", at, then.Total.Probes, then.Total.Unreachable)
	}
	for _, p := range then.Probes {
		if (p.Probe == "atlas:1001373" || p.Probe == "atlas:1001286") && p.State != "unreachable" {
			t.Errorf("%s: state %q, want unreachable (socket errors only)", p.Probe, p.State)
		}
	}
}

// TestUnidentifiedReasonsInReports: an Atlas answer without identity is
// grouped by why in the catchment's unmapped counts, and kept out of the
// rules to-do list (/unmapped), which only lists identities a rule can map.
func TestUnidentifiedReasonsInReports(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.importAtlas("quad9", "quad9", filepath.Join(fixtures.AtlasDir(t), "msm-29083406-chaos-id-server.json"))
	var rep struct {
		Total struct {
			Unidentified int
			Unmapped     map[string]int
		}
	}
	r := e.do("GET", "/api/v1/targets/quad9/catchment?window=168h&at=2021-02-15T10:15:21Z", e.read, "")
	if err := json.Unmarshal(r.body, &rep); err != nil || r.status != 200 {
		t.Fatalf("catchment: %d %v %s", r.status, err, r.body)
	}
	t.Logf("unidentified %d, unmapped %v", rep.Total.Unidentified, rep.Total.Unmapped)
	if _, empty := rep.Total.Unmapped[""]; empty || rep.Total.Unidentified == 0 {
		t.Errorf("unmapped = %v (%d unidentified); want them grouped by reason, none under an empty identity", rep.Total.Unmapped, rep.Total.Unidentified)
	}
	var list struct{ Data []struct{ Identity string } }
	e.do("GET", "/api/v1/targets/quad9/unmapped", e.read, "").decode(t, &list)
	for _, u := range list.Data {
		if len(u.Identity) > 0 && u.Identity[0] == '(' {
			t.Errorf("/unmapped lists the reason %q, which no rule can map", u.Identity)
		}
	}
}
