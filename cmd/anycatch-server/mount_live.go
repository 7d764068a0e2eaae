package main

import (
	"errors"

	"github.com/anycatch/anycatch/api"
	"github.com/anycatch/anycatch/collector"
)

// liveAdapter gives the API the collector's on-demand measurements
// (issue 16) without the api package importing the collector.
type liveAdapter struct{ c *collector.Collector }

var _ api.Live = liveAdapter{}

func (l liveAdapter) ConnectedProbes() []string { return l.c.LiveProbes() }

func (l liveAdapter) StartMeasurement(req api.LiveRequest) (api.LiveMeasurement, error) {
	if req.Target == "" && len(req.Addrs) > 0 {
		o, err := l.c.StartAdhoc(collector.AdhocRequest{Address: req.Address, Addrs: req.Addrs, Kinds: req.Kinds, Probes: req.Probes, Timeout: req.Timeout})
		if errors.Is(err, collector.ErrBadAdhoc) {
			return nil, &api.Error{Code: api.CodeInvalid, Message: err.Error(), Param: "address"}
		}
		if err != nil {
			return nil, err
		}
		return o, nil
	}
	o, err := l.c.StartOnDemand(collector.OnDemandRequest{Target: req.Target, Kinds: req.Kinds, AF: req.AF, Probes: req.Probes, Timeout: req.Timeout})
	switch {
	case errors.Is(err, collector.ErrUnknownTarget):
		// Registered but disabled, or created an instant ago and not yet
		// loaded: either way nothing to run.
		return nil, &api.Error{Code: api.CodeNotFound, Message: "target not found among the enabled targets this collector measures"}
	case errors.Is(err, collector.ErrNothingToRun):
		return nil, &api.Error{Code: api.CodeInvalid, Message: "the target has no measurement of the requested kinds and family", Param: "kinds"}
	case err != nil:
		return nil, err
	}
	return o, nil
}

func (l liveAdapter) Measurement(id string) api.LiveMeasurement {
	if o := l.c.OnDemandByID(id); o != nil {
		return o
	}
	return nil
}

// lazyLive resolves env.Live when called, so the api role works whatever
// order the roles were mounted in; without a collector role it answers
// unavailable.
type lazyLive struct{ env *serveEnv }

var errNoCollector = &api.Error{Code: api.CodeUnavailable, Message: "on-demand measurements need the collector role in this server"}

func (l lazyLive) ConnectedProbes() []string {
	if l.env.Live == nil {
		return nil
	}
	return l.env.Live.ConnectedProbes()
}

func (l lazyLive) StartMeasurement(req api.LiveRequest) (api.LiveMeasurement, error) {
	if l.env.Live == nil {
		return nil, errNoCollector
	}
	return l.env.Live.StartMeasurement(req)
}

func (l lazyLive) Measurement(id string) api.LiveMeasurement {
	if l.env.Live == nil {
		return nil
	}
	return l.env.Live.Measurement(id)
}
