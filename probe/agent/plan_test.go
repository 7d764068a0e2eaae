package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/measure"
)

func TestCheckTarget(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		private bool
		wantErr string // "" means allowed
	}{
		{"1.1.1.1", false, ""},
		{"2606:4700:4700::1111", false, ""},
		{"192.175.48.6", false, ""}, // AS112: globally reachable anycast
		{"127.0.0.1", false, "loopback"},
		{"::1", false, "loopback"},
		{"10.0.0.1", false, "private"},
		{"172.31.255.255", false, "private"},
		{"192.168.1.1", false, "private"},
		{"fd00::1", false, "private"},
		{"100.64.0.1", false, "CGNAT"},
		{"169.254.169.254", false, "link-local"},
		{"fe80::1", false, "link-local"},
		{"224.0.0.251", false, "multicast"},
		{"ff02::1", false, "multicast"},
		{"192.0.2.1", false, "documentation"},
		{"2001:db8::53", false, "documentation"},
		{"198.18.0.1", false, "benchmarking"},
		{"198.19.255.255", false, "benchmarking"},
		{"0.0.0.0", false, "unspecified"},
		{"::", false, "unspecified"},
		{"255.255.255.255", false, "broadcast"},
		{"240.0.0.1", false, "reserved"},
		{"::ffff:10.0.0.1", false, "private"}, // mapped v4 judged as v4
		{"127.0.0.1", true, ""},
		{"::1", true, ""},
		{"not-an-ip", true, "not an IP"},
		{"fe80::1%eth0", true, "zone"},
	} {
		err := CheckTarget(tc.addr, tc.private)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckTarget(%s, %v) = %v, want allowed", tc.addr, tc.private, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckTarget(%s, %v) = %v, want error mentioning %q", tc.addr, tc.private, err, tc.wantErr)
		}
	}
}

func TestNextRun(t *testing.T) {
	base := time.Unix(1_800_000_000, 0) // a multiple of 60 s
	for _, tc := range []struct {
		name             string
		at               time.Time
		interval, offset time.Duration
		want             time.Time
	}{
		{"on the phase goes to the next", base, time.Minute, 0, base.Add(time.Minute)},
		{"just before the phase", base.Add(-time.Nanosecond), time.Minute, 0, base},
		{"offset within interval", base, time.Minute, 15 * time.Second, base.Add(15 * time.Second)},
		{"offset past the interval wraps", base, time.Minute, 75 * time.Second, base.Add(15 * time.Second)},
		{"after the offset", base.Add(20 * time.Second), time.Minute, 15 * time.Second, base.Add(75 * time.Second)},
		{"before the epoch", time.Unix(-10, 0), time.Minute, 0, time.Unix(0, 0)},
	} {
		if got := nextRun(tc.at, tc.interval, tc.offset); !got.Equal(tc.want) {
			t.Errorf("%s: nextRun = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStartJitter(t *testing.T) {
	m := measure.Measurement{ID: "k-root/identity", IntervalSec: 300}
	a, b := startJitter("p1", m), startJitter("p1", m)
	if a != b {
		t.Fatalf("jitter not deterministic: %v then %v", a, b)
	}
	spread := map[time.Duration]bool{}
	for _, p := range []string{"p1", "p2", "p3", "p4", "p5", "p6"} {
		j := startJitter(p, m)
		if j < 0 || j >= 30*time.Second {
			t.Fatalf("jitter %v outside [0, 30s)", j)
		}
		spread[j] = true
	}
	if len(spread) < 4 {
		t.Fatalf("jitter barely varies across probes: %v", spread)
	}
	if j := startJitter("p1", measure.Measurement{ID: "x", IntervalSec: 10}); j >= time.Second {
		t.Fatalf("jitter %v for a 10 s interval, want < 1 s (a tenth)", j)
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBucket(10, func() time.Time { return now })
	if d := b.reserve(10); d != 0 {
		t.Fatalf("burst of 10 at 10 pps waits %v, want 0", d)
	}
	if d := b.reserve(5); d != 500*time.Millisecond {
		t.Fatalf("5 more wait %v, want 500ms", d)
	}
	now = now.Add(time.Second) // pays the debt, then 5 tokens
	if d := b.reserve(5); d != 0 {
		t.Fatalf("after 1 s, 5 packets wait %v, want 0", d)
	}
	if d := b.reserve(90); d != 9*time.Second {
		t.Fatalf("a 90-packet run waits %v, want 9s", d)
	}
	b.cancel(90) // an abandoned wait gives its packets back: 0 tokens left
	now = now.Add(2 * time.Second)
	b.setRate(5) // 20 tokens earned, capped at the new burst of 5
	if d := b.reserve(6); d != 200*time.Millisecond {
		t.Fatalf("after lowering to 5 pps, 6 packets wait %v, want 200ms", d)
	}
}

func TestPlanSchedule(t *testing.T) {
	ping := measure.Spec{Kind: measure.KindPing}
	s := &measure.Schedule{Measurements: []measure.Measurement{
		{ID: "ok", Address: "1.1.1.1", IntervalSec: 60, Spec: ping},
		{ID: "ok", Address: "1.1.1.1", IntervalSec: 60, Spec: ping},
		{ID: "fast", Address: "1.1.1.1", IntervalSec: 5, Spec: ping},
		{ID: "lan", Address: "192.168.0.1", IntervalSec: 60, Spec: ping},
		{ID: "cannon", Address: "1.1.1.1", IntervalSec: 60, Spec: measure.Spec{Kind: measure.KindPing, Ping: &measure.PingSpec{Count: 10000}}},
		{ID: "", Address: "1.1.1.1", IntervalSec: 60, Spec: ping},
	}}
	ok, refused := planSchedule(s, false, time.Minute)
	if len(ok) != 1 || ok[0].ID != "ok" {
		t.Fatalf("accepted %+v, want only the first \"ok\"", ok)
	}
	want := map[string]string{"ok": "duplicate", "fast": "below the probe's minimum", "lan": "private", "cannon": "ping.count", "": "missing"}
	if len(refused) != len(want) {
		t.Fatalf("refused %+v", refused)
	}
	for _, r := range refused {
		if !strings.Contains(r.Reason, want[r.ID]) {
			t.Errorf("refusal of %q: %q, want it to mention %q", r.ID, r.Reason, want[r.ID])
		}
	}
}
