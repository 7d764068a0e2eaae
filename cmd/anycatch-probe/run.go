package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/internal/cliflag"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe"
	"github.com/anycatch/anycatch/probe/agent"
	"github.com/anycatch/anycatch/probe/ping"
	"github.com/anycatch/anycatch/probe/spool"
	"github.com/anycatch/anycatch/probe/trace"
)

// Hard caps no flag, file or environment can exceed.
const (
	capPPS        = 1000
	capConcurrent = 64
)

// agentSettings are the `run` options. Sources apply in order defaults <
// config file < environment < flags.
type agentSettings struct {
	Collector     string   `json:"collector"`
	EnrollToken   string   `json:"enroll_token"`
	StateDir      string   `json:"state_dir"`
	AllowPrivate  bool     `json:"allow_private"`
	MaxPPS        int      `json:"max_pps"`
	MaxConcurrent int      `json:"max_concurrent"`
	SpoolMB       int      `json:"spool_mb"`
	MinInterval   int      `json:"min_interval_sec"` // shortest measurement interval accepted from a schedule
	Lat           *float64 `json:"lat"`
	Lon           *float64 `json:"lon"`
	LogFormat     string   `json:"log_format"` // "text" or "json"
	LogLevel      string   `json:"log_level"`  // "debug", "info", "warn", "error"
	NoLive        bool     `json:"no_live"`    // never open the live channel; poll only
}

func defaultSettings() agentSettings {
	dir := "/var/lib/anycatch-probe"
	if d := os.Getenv("STATE_DIRECTORY"); d != "" { // systemd StateDirectory=
		dir = strings.Split(d, ":")[0]
	}
	return agentSettings{StateDir: dir, MaxPPS: 50, MaxConcurrent: 4, SpoolMB: 64, MinInterval: 60, LogFormat: "text", LogLevel: "info"}
}

// runEnv reads run's flags from the environment as ANYCATCH_<FLAG>
// (cliflag.EnvName: --min-interval-sec is ANYCATCH_MIN_INTERVAL_SEC).
// ANYCATCH_MIN_INTERVAL, the name before the variables were derived from
// the flags, is still read, with a deprecation warning.
var runEnv = cliflag.Env{Aliases: map[string]string{"ANYCATCH_MIN_INTERVAL": "min-interval-sec"}}

// fileKey is the config file key of a run flag: its name with '_' for '-'
// (TestRunFileKeys holds agentSettings' JSON tags to it).
func fileKey(flagName string) string { return strings.ReplaceAll(flagName, "-", "_") }

// runFlags is run's flag set writing into s (and the flags that are not
// settings: the config file path, lat and lon, which are pointers in s).
// docs/probe.md's settings table is generated from it (TestRunFlagsDoc).
func runFlags(s *agentSettings, configPath *string, lat, lon *float64) *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(configPath, "config", "", "JSON config file of the settings below (keys: the flag names with _ for -, e.g. min_interval_sec)")
	fs.StringVar(&s.Collector, "collector", "", "collector URL, e.g. https://collector.example.net (needed until enrolled)")
	fs.StringVar(&s.EnrollToken, "enroll-token", "", "one-time enrollment token (needed until enrolled)")
	fs.StringVar(&s.StateDir, "state-dir", s.StateDir, "directory for identity, spool and status")
	fs.BoolVar(&s.AllowPrivate, "allow-private", false, "allow private, loopback and other special-purpose targets (labs only)")
	fs.IntVar(&s.MaxPPS, "max-pps", s.MaxPPS, fmt.Sprintf("packets-per-second ceiling, whatever the schedule asks (1..%d)", capPPS))
	fs.IntVar(&s.MaxConcurrent, "max-concurrent", s.MaxConcurrent, fmt.Sprintf("measurements at once (1..%d)", capConcurrent))
	fs.IntVar(&s.SpoolMB, "spool-mb", s.SpoolMB, "disk space for results awaiting upload, MiB; oldest dropped beyond it")
	fs.IntVar(&s.MinInterval, "min-interval-sec", s.MinInterval, "shortest measurement interval accepted from a schedule, seconds (5..86400; lower it only for labs)")
	fs.Float64Var(lat, "lat", 0, "your latitude (optional; wins over GeoIP)")
	fs.Float64Var(lon, "lon", 0, "your longitude (optional)")
	fs.StringVar(&s.LogFormat, "log-format", s.LogFormat, "log format: text or json")
	fs.StringVar(&s.LogLevel, "log-level", s.LogLevel, "log level: debug, info, warn or error")
	fs.BoolVar(&s.NoLive, "no-live", false, "do not hold the live channel to the collector (schedule changes then wait for the next poll)")
	return fs
}

// loadSettings resolves the run options from args, getenv and the config
// file (--config or ANYCATCH_CONFIG). It returns flag.ErrHelp for -h;
// deprecation warnings go to stderr.
func loadSettings(args []string, getenv func(string) string, stdout, stderr io.Writer) (agentSettings, error) {
	s := defaultSettings()
	var configPath string
	var lat, lon float64
	fs := runFlags(&s, &configPath, &lat, &lon)
	fs.Usage = func() {
		fmt.Fprintf(stdout, `Usage: anycatch-probe run [flags]

Run the probe agent: enroll with the collector once, then measure on its
schedule and upload results, until SIGTERM. Later starts need only the
state directory.

Every flag can also be set in the config file or the environment as
ANYCATCH_<FLAG>, dashes as underscores (ANYCATCH_COLLECTOR,
ANYCATCH_MIN_INTERVAL_SEC, ANYCATCH_CONFIG, ...); flags win over the
environment, which wins over the file.

Flags:
`)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fmt.Fprintf(stdout, "\nExample:\n  anycatch-probe run --collector https://collector.example.net --enroll-token TOKEN\n")
	}
	// Flags after a stray argument are parsed too, so the refusal below
	// names the argument instead of a later flag being silently ignored.
	pos, err := cliflag.Parse(fs, args) // Parse itself calls fs.Usage for -h
	if err != nil {
		return s, err
	}
	if len(pos) > 0 {
		return s, fmt.Errorf("unexpected arguments: %q (run takes only flags)", pos)
	}
	// The environment fills what the command line did not set, the
	// config file path included; both then count as set below.
	env := runEnv
	env.Warn = func(msg string) { fmt.Fprintf(stderr, "anycatch-probe run: %s\n", msg) }
	if err := env.Apply(fs, getenv); err != nil {
		return s, err
	}

	// Rebuild from the lowest precedence up: defaults, file, then the
	// flags set by the environment or the command line.
	out := defaultSettings()
	if configPath != "" {
		if err := readConfigFile(configPath, &out); err != nil {
			return s, err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "collector":
			out.Collector = s.Collector
		case "enroll-token":
			out.EnrollToken = s.EnrollToken
		case "state-dir":
			out.StateDir = s.StateDir
		case "allow-private":
			out.AllowPrivate = s.AllowPrivate
		case "max-pps":
			out.MaxPPS = s.MaxPPS
		case "max-concurrent":
			out.MaxConcurrent = s.MaxConcurrent
		case "spool-mb":
			out.SpoolMB = s.SpoolMB
		case "min-interval-sec":
			out.MinInterval = s.MinInterval
		case "no-live":
			out.NoLive = s.NoLive
		case "lat":
			out.Lat = &lat
		case "lon":
			out.Lon = &lon
		case "log-format":
			out.LogFormat = s.LogFormat
		case "log-level":
			out.LogLevel = s.LogLevel
		}
	})
	return out, out.validate()
}

func readConfigFile(path string, s *agentSettings) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func (s agentSettings) validate() error {
	var errs []error
	if s.StateDir == "" {
		errs = append(errs, errors.New("state-dir: required"))
	}
	if s.MaxPPS < 1 || s.MaxPPS > capPPS {
		errs = append(errs, fmt.Errorf("max-pps: %d is outside 1..%d", s.MaxPPS, capPPS))
	}
	if s.MaxConcurrent < 1 || s.MaxConcurrent > capConcurrent {
		errs = append(errs, fmt.Errorf("max-concurrent: %d is outside 1..%d", s.MaxConcurrent, capConcurrent))
	}
	if s.SpoolMB < 1 || s.SpoolMB > 10240 {
		errs = append(errs, fmt.Errorf("spool-mb: %d is outside 1..10240", s.SpoolMB))
	}
	if s.MinInterval < 5 || s.MinInterval > 86400 {
		errs = append(errs, fmt.Errorf("min-interval-sec: %d is outside 5..86400", s.MinInterval))
	}
	if (s.Lat == nil) != (s.Lon == nil) {
		errs = append(errs, errors.New("lat and lon: give both or neither"))
	} else if s.Lat != nil && (*s.Lat < -90 || *s.Lat > 90 || *s.Lon < -180 || *s.Lon > 180) {
		errs = append(errs, errors.New("lat/lon: out of range"))
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log-format: %q is not text or json", s.LogFormat))
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log-level: %q is not debug, info, warn or error", s)
	}
	return l, nil
}

// runAgentCmd is the `run` subcommand.
func runAgentCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	s, err := loadSettings(args, os.Getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "anycatch-probe run: %v\n", err)
		return exitUsage
	}
	level, _ := parseLevel(s.LogLevel)
	hopt := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, hopt)
	if s.LogFormat == "json" {
		h = slog.NewJSONHandler(stderr, hopt)
	}
	log := slog.New(h)

	caps, limits := detectCapabilities()
	for _, l := range limits {
		log.Warn("limitation", "detail", l)
	}
	var loc *measure.Location
	if s.Lat != nil {
		loc = &measure.Location{Lat: *s.Lat, Lon: *s.Lon}
	}
	a, err := agent.New(agent.Config{
		Collector: s.Collector, EnrollToken: s.EnrollToken, StateDir: s.StateDir,
		// The wiring point for the real engines: everything else in the
		// agent takes this function and nothing more.
		Runner: func(ctx context.Context, m measure.Measurement) measure.Result {
			return probe.Run(ctx, m, probe.Options{})
		},
		Version:      version,
		Capabilities: caps, Limitations: limits, Location: loc,
		AllowPrivate: s.AllowPrivate, MaxPPS: s.MaxPPS, MaxConcurrent: s.MaxConcurrent,
		MinInterval: time.Duration(s.MinInterval) * time.Second,
		NoLive:      s.NoLive,
		Spool:       spool.Options{MaxBytes: int64(s.SpoolMB) << 20},
		Logger:      log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "anycatch-probe run: %v\n", err)
		return exitUsage
	}
	if err := a.Run(ctx); err != nil {
		log.Error("probe failed", "err", err)
		return exitCannotRun
	}
	return exitOK
}

// detectCapabilities asks the engines what this process may do and says in
// words what is lost without CAP_NET_RAW.
func detectCapabilities() (measure.Capabilities, []string) {
	c := measure.Capabilities{PingMode: ping.Detect(), TraceMode: trace.Detect()}
	c.Privileged = c.PingMode == ping.ModeRaw
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() && !n.IP.IsPrivate() {
				if n.IP.To4() != nil {
					c.IPv4 = true
				} else {
					c.IPv6 = true
				}
			}
		}
	}
	var limits []string
	switch c.PingMode {
	case "":
		limits = append(limits, "no ICMP socket: ping measurements will fail (grant CAP_NET_RAW, or allow unprivileged ICMP with sysctl net.ipv4.ping_group_range)")
	case ping.ModeDgram:
		limits = append(limits, "no CAP_NET_RAW: ping uses unprivileged ICMP sockets (reply TTLs may be missing)")
	}
	switch c.TraceMode {
	case "":
		limits = append(limits, "traceroute unavailable on this host")
	case trace.ModeRecvErr:
		limits = append(limits, "no CAP_NET_RAW: traceroute runs unprivileged over UDP (no ICMP-mode traces, no MPLS labels)")
	}
	if !c.IPv4 && !c.IPv6 {
		limits = append(limits, "no global address found on any interface (behind NAT this is normal)")
	}
	return c, limits
}
