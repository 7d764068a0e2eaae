package alert_test

import (
	"fmt"
	"time"

	"github.com/anycatch/anycatch/alert"
)

// The service feeds one snapshot per target and family each round, the
// moves it read, and evaluates; here a site is withdrawn and comes back.
func ExampleEvaluator() {
	rules := []alert.Rule{{ID: 1, TargetID: 1, Target: "k-root", Kind: alert.KindSiteLost, AF: 4, ResolveSec: 20, Enabled: true}}
	e := alert.NewEvaluator()
	t0 := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	rounds := []map[string]int{
		{"ams": 3, "fra": 2}, // steady
		{"fra": 5},           // ams withdrawn: its probes now reach fra
		{"fra": 5},
		{"ams": 3, "fra": 2}, // restored
		{"ams": 3, "fra": 2},
		{"ams": 3, "fra": 2},
	}
	for i, sites := range rounds {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		e.Observe(alert.Snapshot{TargetID: 1, AF: 4, Time: now, Sites: sites})
		for _, ev := range e.Eval(now, rules) {
			fmt.Printf("+%02ds %s: %s\n", i*10, ev.Alert.Status, ev.Alert.Summary)
		}
	}
	// Output:
	// +10s firing: site ams lost all its probes (had 3 within 5m0s, IPv4)
	// +50s resolved: site ams lost all its probes (had 3 within 5m0s, IPv4)
}
