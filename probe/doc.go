// Package probe is the measuring side of anycatch: the registry of
// measurement engines (ping, trace, dns, identity, http, ntp) and [Run], which turns
// one scheduled [measure.Measurement] into one [measure.Result] ready to
// upload — address parsed, spec defaulted and validated, engine run under
// a deadline, panics turned into failed results, envelope filled.
//
// The registry is a plain map built by [Engines]; nothing registers itself
// from init. The agent's scheduler, spool and uploader live in
// sub-packages and call [Run]; the one-shot CLI calls it too, so a
// terminal measurement and a scheduled one go through the same code.
package probe
