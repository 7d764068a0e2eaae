package main

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the garbage collector target the server runs with
// unless GOGC is set. The server's live heap is small (tens of MB) while a
// 10,000-probe report allocates several MB for a moment: with Go's default
// of 100 the collector ran every few requests and took a fifth of the CPU
// of report handlers at seeded scale (docs/benchmarks.md). 400 lets the
// heap grow to five times the live data between collections instead.
const serverGCPercent = 400

// tuneGC applies serverGCPercent unless the environment sets GOGC, and
// reports the value in effect.
func tuneGC() int {
	if v := os.Getenv("GOGC"); v != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(serverGCPercent)
	return serverGCPercent
}
