package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/alert"
)

// fakeChecks is a CheckStore counting its calls; the embedded Store is
// nil (runChecks must not use it).
type fakeChecks struct {
	Store
	calls   map[string]int
	windows []time.Duration
	fail    error
}

func (f *fakeChecks) ProbeRegions(context.Context, int) (map[string]alert.ProbeRegion, error) {
	f.calls["regions"]++
	return map[string]alert.ProbeRegion{"p": {Country: "DE"}}, f.fail
}

func (f *fakeChecks) SpeedOfLight(_ context.Context, _ int, from, to time.Time) ([]alert.Finding, error) {
	f.calls["sol"]++
	f.windows = append(f.windows, to.Sub(from))
	return []alert.Finding{{AF: 4, Key: "p>ams"}}, f.fail
}

func (f *fakeChecks) Inflation(context.Context, int, time.Time, time.Time) ([]alert.Finding, error) {
	f.calls["inflation"]++
	return nil, f.fail
}

// TestRunChecksCadence: the checks run only for kinds with an enabled rule
// of the target, with the longest window of those rules, at most once per
// CheckEvery — a failing check included.
func TestRunChecksCadence(t *testing.T) {
	fs := &fakeChecks{calls: map[string]int{}}
	s := New(Config{Store: fs, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	ti := TargetInfo{ID: 1, Name: "lab", Enabled: true}
	rules := []alert.Rule{
		{ID: 1, TargetID: 1, Kind: alert.KindSpeedOfLight, WindowSec: 1800, Enabled: true},
		{ID: 2, TargetID: 1, Kind: alert.KindSpeedOfLight, WindowSec: 7200, Enabled: true},
		{ID: 3, TargetID: 1, Kind: alert.KindRegionFlap, Region: alert.RegionASN, Enabled: true},
		{ID: 4, TargetID: 1, Kind: alert.KindInflation, Enabled: false}, // muted: not checked
		{ID: 5, TargetID: 2, Kind: alert.KindInflation, Enabled: true},  // another target's
		{ID: 6, TargetID: 1, Kind: alert.KindBurst, Enabled: true},
	}
	step := func(at time.Duration, fail error) error {
		fs.fail = fail
		return s.runChecks(context.Background(), t0.Add(at), ti, rules)
	}
	if err := step(0, nil); err != nil {
		t.Fatal(err)
	}
	if fs.calls["sol"] != 1 || fs.calls["regions"] != 1 || fs.calls["inflation"] != 0 {
		t.Fatalf("first round calls %v, want sol and regions once, no inflation", fs.calls)
	}
	if fs.windows[0] != 2*time.Hour {
		t.Errorf("speed-of-light window %s, want the longest rule's 2h", fs.windows[0])
	}
	if err := step(10*time.Second, nil); err != nil || fs.calls["sol"] != 1 || fs.calls["regions"] != 1 {
		t.Fatalf("10 s later: err %v, calls %v; want no new check before CheckEvery", err, fs.calls)
	}
	err := step(DefaultCheckEvery, errors.New("db down"))
	if err == nil || !strings.Contains(err.Error(), "db down") || !strings.Contains(err.Error(), "check of lab") {
		t.Errorf("failing check: err %v, want it reported with the target", err)
	}
	if err := step(DefaultCheckEvery+10*time.Second, nil); err != nil || fs.calls["sol"] != 2 || fs.calls["regions"] != 2 {
		t.Errorf("after a failure: err %v, calls %v; want no retry before the next period", err, fs.calls)
	}
	if err := step(2*DefaultCheckEvery, nil); err != nil || fs.calls["sol"] != 3 {
		t.Errorf("next period: err %v, calls %v", err, fs.calls)
	}
}

// TestRunChecksWithoutCheckStore: a store without the checks leaves the
// rules without data, and says so once, instead of failing the round.
type plainStore struct{ Store }

func TestRunChecksWithoutCheckStore(t *testing.T) {
	var log strings.Builder
	s := New(Config{Store: plainStore{}, Log: slog.New(slog.NewTextHandler(&log, nil))})
	rules := []alert.Rule{{ID: 1, TargetID: 1, Kind: alert.KindInflation, Enabled: true}}
	for i := range 3 {
		if err := s.runChecks(context.Background(), time.Unix(int64(i)*600, 0), TargetInfo{ID: 1, Name: "lab"}, rules); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(log.String(), "never fire"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, log.String())
	}
}
