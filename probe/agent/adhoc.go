package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anycatch/anycatch/measure"
)

// runAdhoc queues the ad-hoc measurements of an on-demand request (an
// address that is no registered target) for one run now. The probe's own
// policy decides exactly as for scheduled measurements: the special-range
// refusal (CheckTarget, again in runOne), the spec limits (Validate), the
// packet-rate ceiling and the worker count. Whatever it will not run is
// reported back per measurement, so the requester sees a refusal instead
// of a silent timeout. Results go through the spool and the normal upload.
func (a *Agent) runAdhoc(m measure.LiveMessage, jobs chan<- job) {
	for i, am := range m.Adhoc {
		if err := checkAdhoc(m.Request, i, am, a.cfg.AllowPrivate); err != nil {
			a.reportRefusal(m.Request, am.ID, err.Error())
			continue
		}
		// A fresh planned entry: the busy flag only guards this run; the
		// measurement is not kept in the plan.
		p := &planned{m: am}
		p.busy.Store(true)
		select {
		case jobs <- job{m: am, p: p, urgent: true}:
		default:
			a.countSkip(p, "all workers busy")
			a.reportRefusal(m.Request, am.ID, "probe busy: all workers are running measurements")
		}
	}
}

// checkAdhoc says why the i-th ad-hoc measurement of request must not run.
func checkAdhoc(request string, i int, m measure.Measurement, allowPrivate bool) error {
	switch {
	case request == "":
		return fmt.Errorf("ad-hoc measurement without a request id")
	case i >= measure.MaxAdhoc:
		return fmt.Errorf("more than %d ad-hoc measurements in one request", measure.MaxAdhoc)
	case !strings.HasPrefix(m.ID, measure.AdhocPrefix+request+"/") || !measure.IsAdhocID(m.ID) || len(m.ID) > 200:
		// The collector accepts results only under its own ids; any other
		// would be rejected at upload, so do not spend packets on it.
		return fmt.Errorf("ad-hoc id %q does not belong to request %s", truncate(m.ID, 200), request)
	}
	if err := m.Spec.Validate(); err != nil {
		return fmt.Errorf("ad-hoc spec: %w", err)
	}
	if !slices.Contains(measure.AdhocKinds, m.Spec.Kind) {
		return fmt.Errorf("ad-hoc kind %q refused: only identity, ping, trace and dns may run ad hoc", truncate(string(m.Spec.Kind), 40))
	}
	return CheckTarget(m.Address, allowPrivate)
}
