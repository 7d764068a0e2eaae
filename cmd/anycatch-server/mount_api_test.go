package main

import "testing"

// TestAPIInvalidatesCollector checks the api role's OnChange reaches the
// collector's Invalidate whichever role was mounted first.
func TestAPIInvalidatesCollector(t *testing.T) {
	env := &serveEnv{}
	onChange := invalidateTargets(env)
	onChange() // no collector yet: nothing to call, no panic
	calls := 0
	env.InvalidateTargets = func() { calls++ }
	onChange()
	onChange()
	if calls != 2 {
		t.Errorf("got %d Invalidate calls, want 2", calls)
	}
}
