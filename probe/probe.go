package probe

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/dns"
	"github.com/anycatch/anycatch/probe/httpget"
	"github.com/anycatch/anycatch/probe/ntp"
	"github.com/anycatch/anycatch/probe/ping"
	"github.com/anycatch/anycatch/probe/trace"
)

// Engine runs one kind of measurement against dst with spec (defaults
// applied and validated) and stores its payload in r: r.Ping, r.Trace or
// r.DNS, r.HTTP or r.NTP, and r.Src when known. Loss, timeouts and bad replies belong in the
// payload; the error means the measurement could not be made at all. The
// engine must return by ctx's deadline.
type Engine func(ctx context.Context, dst netip.Addr, spec measure.Spec, opt Options, r *measure.Result) error

// Options configures [Run]. The zero value runs every engine in [Engines]
// with their own zero options.
type Options struct {
	// Engines maps each kind to its engine. Nil means Engines(); a kind
	// missing from a non-nil map gives a failed result.
	Engines map[measure.Kind]Engine

	// Margin is added to spec.Timeout() for the run's deadline. Zero
	// means DefaultMargin.
	Margin time.Duration

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	Ping  ping.Options    // for ping
	Trace trace.Options   // for trace
	DNS   dns.Options     // for dns and identity
	HTTP  httpget.Options // for http
	NTP   ntp.Options     // for ntp
}

// DefaultMargin is how long past its spec's own timeout a run may take
// before its context is cancelled.
const DefaultMargin = 2 * time.Second

// maxError bounds Result.Error (measure.Result.Validate allows 1024).
const maxError = 1000

// Engines returns a new registry with every engine this build has.
func Engines() map[measure.Kind]Engine {
	return map[measure.Kind]Engine{
		measure.KindPing:     runPing,
		measure.KindTrace:    runTrace,
		measure.KindDNS:      runDNS,
		measure.KindIdentity: runIdentity,
		measure.KindHTTP:     runHTTP,
		measure.KindNTP:      runNTP,
	}
}

func runHTTP(ctx context.Context, dst netip.Addr, spec measure.Spec, opt Options, r *measure.Result) error {
	res, err := httpget.Get(ctx, dst, *spec.HTTP, opt.HTTP)
	r.HTTP = res
	return err
}

func runNTP(ctx context.Context, dst netip.Addr, spec measure.Spec, opt Options, r *measure.Result) error {
	res, err := ntp.Query(ctx, netip.AddrPortFrom(dst, uint16(spec.NTP.Port)), *spec.NTP, opt.NTP)
	r.NTP = res
	return err
}

func runPing(ctx context.Context, dst netip.Addr, spec measure.Spec, opt Options, r *measure.Result) error {
	res, err := ping.Run(ctx, dst, *spec.Ping, opt.Ping)
	r.Ping = res
	return err
}

func runTrace(ctx context.Context, dst netip.Addr, spec measure.Spec, opt Options, r *measure.Result) error {
	res, err := trace.Run(ctx, dst, *spec.Trace, opt.Trace)
	r.Trace = res
	return err
}

func runDNS(ctx context.Context, dst netip.Addr, spec measure.Spec, opt Options, r *measure.Result) error {
	res, err := dns.Query(ctx, netip.AddrPortFrom(dst, uint16(spec.DNS.Port)), *spec.DNS, opt.DNS)
	r.DNS = res
	return err
}

func runIdentity(ctx context.Context, dst netip.Addr, spec measure.Spec, opt Options, r *measure.Result) error {
	res, err := dns.Identity(ctx, netip.AddrPortFrom(dst, uint16(spec.DNS.Port)), *spec.DNS, opt.DNS)
	r.DNS = res
	return err
}

// Run performs m once and returns its result. It never fails: a bad
// address, an invalid spec, a missing engine, an engine error or panic all
// become a result with Error set. Every result with a parseable address
// passes measure.Result.Validate.
func Run(ctx context.Context, m measure.Measurement, opt Options) (r measure.Result) {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	r = measure.Result{
		V:           measure.Version,
		ID:          measure.NewUUIDv7(start),
		Measurement: m.ID,
		Target:      m.Target,
		Kind:        m.Spec.Kind,
		Time:        start.UTC(),
		Dst:         m.Address,
	}
	defer func() {
		r.DurationMS = float64(now().Sub(start).Microseconds()) / 1000
		if len(r.Error) > maxError {
			r.Error = r.Error[:maxError]
		}
	}()

	dst, err := netip.ParseAddr(m.Address)
	if err != nil {
		r.Error = fmt.Sprintf("invalid address %q", m.Address)
		return r
	}
	dst = dst.Unmap()
	r.Dst = dst.String()
	r.AF = 6
	if dst.Is4() {
		r.AF = 4
	}
	if err := m.Spec.Validate(); err != nil {
		r.Error = "invalid spec: " + err.Error()
		return r
	}
	spec := m.Spec.WithDefaults()
	engines := opt.Engines
	if engines == nil {
		engines = Engines()
	}
	engine := engines[spec.Kind]
	if engine == nil {
		r.Error = fmt.Sprintf("no %s engine in this probe", spec.Kind)
		return r
	}
	margin := opt.Margin
	if margin <= 0 {
		margin = DefaultMargin
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout()+margin)
	defer cancel()
	if err := runEngine(ctx, engine, dst, spec, opt, &r); err != nil {
		r.Error = err.Error()
	}
	if r.Error == "" && r.Ping == nil && r.Trace == nil && r.DNS == nil && r.HTTP == nil && r.NTP == nil {
		r.Error = fmt.Sprintf("%s engine returned no result", spec.Kind)
	}
	return r
}

// runEngine calls engine, turning a panic into an error so that one bad
// reply cannot take the agent down.
func runEngine(ctx context.Context, engine Engine, dst netip.Addr, spec measure.Spec, opt Options, r *measure.Result) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.Ping, r.Trace, r.DNS, r.HTTP, r.NTP = nil, nil, nil, nil, nil
			err = fmt.Errorf("internal error: %s engine panicked: %v", spec.Kind, p)
		}
	}()
	return engine(ctx, dst, spec, opt, r)
}
