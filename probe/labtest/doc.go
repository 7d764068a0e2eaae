// Package labtest holds no code: its tests run the anycatch-probe binary
// inside the namespaces of a real BGP anycast lab (package lab) and check
// the probe engines against the lab's ground truth — traceroute hops
// against the routers on the BGP path, ping RTT against the configured
// link delays, identity answers against the site that truth names — in
// privileged and unprivileged modes.
//
// The tests need root (network namespaces), bird2 and nsd, and skip
// otherwise. They measure only inside the namespaces they create.
//
// TestTraceBenchmark compares the wall time of one complete trace with
// traceroute(8), mtr and scamper in a lab with a ~100 ms, six-hop path; it
// runs only when asked:
//
//	ANYCATCH_LAB_BENCH=1 go test ./probe/labtest -run TestTraceBenchmark -v
//
// TestAgentFootprint measures RSS and CPU of a real agent running 50
// targets of mixed kinds against a real collector, also only when asked:
//
//	ANYCATCH_LAB_FOOTPRINT=1 go test ./probe/labtest -run TestAgentFootprint -v -timeout 20m
package labtest
