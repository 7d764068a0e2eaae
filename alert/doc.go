// Package alert is anycatch's alerting domain logic, pure Go with no SQL or
// HTTP: alert rules over a target's catchment (a site's share changing, a
// site losing all its probes, unreachable or unidentified shares, bursts of
// moves, flapping probes, regions whose probes flap, and the counts of
// periodic checks: speed-of-light violations and inflated RTTs), their
// evaluation with hysteresis over periodic catchment snapshots and the
// change events the collector writes, and the wire types of alerts,
// webhook endpoints and deliveries.
//
// Evaluation is a function of its inputs and the time passed in: the
// caller (alert/service) feeds snapshots, moves, probe regions and check
// results and calls [Evaluator.Eval] with the current time, so tests drive
// it with recorded sequences and a fake clock.
package alert
