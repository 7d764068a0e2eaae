package alert

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzRule decodes a rule as the API and the store do, validates it and,
// when valid, evaluates it over a fixed sequence: whatever the definition,
// nothing may panic, and a valid rule must survive a JSON round trip.
func FuzzRule(f *testing.F) {
	// Seeds: a minimal site_lost rule; a share rule with every knob; a
	// clear above the threshold (invalid); a negative window; NaN-ish
	// threshold spelled as a huge number; an unknown kind.
	f.Add([]byte(`{"kind":"site_lost"}`))
	f.Add([]byte(`{"kind":"share_change","af":6,"threshold":20,"clear":5,"window_sec":600,"for_sec":30,"resolve_sec":-1,"min_probes":1}`))
	f.Add([]byte(`{"kind":"burst","threshold":3,"clear":9}`))
	f.Add([]byte(`{"kind":"flap","window_sec":-5,"flap_changes":1}`))
	f.Add([]byte(`{"kind":"unreachable_share","threshold":1e308}`))
	f.Add([]byte(`{"kind":"x","name":"\u0000"}`))
	// The region and check kinds: a valid region_flap; one without a
	// region (invalid); a region on a kind without regions (invalid); a
	// speed_of_light rule with the default window; an inflation rule
	// with a window below the check minimum (invalid).
	f.Add([]byte(`{"kind":"region_flap","region":"country","threshold":1,"min_probes":2}`))
	f.Add([]byte(`{"kind":"region_flap","threshold":1}`))
	f.Add([]byte(`{"kind":"burst","region":"asn"}`))
	f.Add([]byte(`{"kind":"speed_of_light","threshold":0,"min_probes":1}`))
	f.Add([]byte(`{"kind":"inflation","threshold":5,"window_sec":60}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Rule
		if json.Unmarshal(b, &r) != nil {
			return
		}
		r.Defaults()
		if r.Validate() != nil {
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal valid rule: %v", err)
		}
		var back Rule
		if err := json.Unmarshal(out, &back); err != nil || back.Validate() != nil {
			t.Fatalf("valid rule %s does not round-trip: %v", out, err)
		}
		r.ID, r.TargetID, r.Enabled = 1, 1, true
		e := NewEvaluator()
		e.SetRegions(1, map[string]ProbeRegion{"p": {Country: "DE", Continent: "EU", ASN: 64500}})
		for i, sites := range []map[string]int{{"a": 3, "b": 1}, {"b": 4}, {"a": 1, "b": 3}, {}} {
			now := t0.Add(time.Duration(i) * 10 * time.Second)
			e.AddMoves([]Move{{TargetID: 1, AF: 4, Probe: "p", Time: now, From: "a", To: "b"}})
			e.Observe(Snapshot{TargetID: 1, AF: 4, Time: now, Sites: sites, Unreachable: i})
			e.Observe(Snapshot{TargetID: 1, AF: 6, Time: now, Sites: sites, Unidentified: i})
			e.ObserveCheck(1, r.Kind, now, []Finding{{AF: 4, Key: "p>a", Weight: float64(i), Detail: "p"}})
			e.Eval(now, []Rule{r})
			e.Prune(now, time.Hour)
		}
	})
}
