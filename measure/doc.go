// Package measure is anycatch's shared vocabulary: measurement kinds and
// specs, the versioned result wire format (ping, trace, dns/identity), the
// schedule a collector hands to a probe, upload verdicts, and the probe
// request-signing scheme.
//
// It imports only the standard library so that every other package — the
// probe binary included — can depend on it without pulling anything else in.
//
// # Wire format
//
// A result travels as one JSON object (one line of NDJSON in an upload):
//
//	{"v":1,"id":"0192…","msm":"k-root/identity","kind":"identity","ts":"2026-11-21T05:00:00Z",
//	 "dst":"198.18.53.53","af":4,"dns":{…}}
//
// Exactly one of ping, trace or dns is set and must match kind. Results are
// keyed by a probe-generated UUIDv7 so a retried upload is never stored
// twice. [Result.Validate] is the single gate every parser and the collector
// use before trusting a result.
package measure
