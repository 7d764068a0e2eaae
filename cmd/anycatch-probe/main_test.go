package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anycatch/anycatch/internal/dnstest"
	"github.com/anycatch/anycatch/measure"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestDNSAndIdentityEndToEnd runs the real commands against a loopback
// dnstest server.
func TestDNSAndIdentityEndToEnd(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Config{Records: []string{"www.example.test. 300 IN A 198.51.100.1"}})
	port := strconv.Itoa(int(srv.Port()))
	addr := srv.Addr().String()
	hidden := dnstest.Start(t, dnstest.Config{HideIdentity: true})
	silent := dnstest.Start(t, dnstest.Config{DropFirst: 1 << 20})
	truncating := dnstest.Start(t, dnstest.Config{TruncateUDP: true})

	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of stdout
	}{
		{"dns chaos", []string{"dns", "-p", port, addr}, 0, []string{"status: NOERROR", "flags: qr aa; ANSWER: 1", `"` + dnstest.DefaultHostname + `"`, "NSID: ", dnstest.DefaultNSID, "(UDP, 1 try)"}},
		{"dns flags after target", []string{"dns", addr, "id.server", "--port", port, "--nsid=false"}, 0, []string{"id.server.", `"` + dnstest.DefaultIDServer + `"`}},
		{"dns IN A", []string{"dns", addr, "-p", port, "www.example.test", "--rd"}, 0, []string{"www.example.test.\t300\tIN\tA\t198.51.100.1", "flags: qr aa rd;"}},
		{"dns nxdomain is an answer", []string{"dns", "-p", port, addr, "nope.example.test", "AAAA", "IN"}, 0, []string{"status: NXDOMAIN"}},
		{"dns tcp", []string{"dns", "--tcp", "-p", port, addr}, 0, []string{"(TCP, 1 try)"}},
		{"dns fallback", []string{"dns", "-p", strconv.Itoa(int(truncating.Port())), "127.0.0.1"}, 0, []string{"Truncated, retrying in TCP mode.", "(TCP, 2 tries)"}},
		{"dns timeout", []string{"dns", "-p", strconv.Itoa(int(silent.Port())), "--timeout", "150ms", "--retries", "1", "127.0.0.1"}, 1, []string{";; no answer: timeout", "(UDP, 2 tries)"}},
		{"identity", []string{"identity", "-p", port, addr}, 0, []string{"hostname.bind: " + dnstest.DefaultHostname, "id.server:     " + dnstest.DefaultIDServer, "NSID:          " + dnstest.DefaultNSID}},
		{"identity hidden", []string{"identity", "-p", strconv.Itoa(int(hidden.Port())), "127.0.0.1"}, 1, []string{"no identity", "REFUSED"}},
		{"identity -4 literal", []string{"identity", "-4", "-p", port, addr}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}

	// --json prints one valid wire-format result.
	for _, kind := range []string{"dns", "identity"} {
		code, out, _ := runCLI(t, kind, "--json", "-p", port, addr)
		var r measure.Result
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || strings.Count(out, "\n") != 1 {
			t.Fatalf("%s --json: exit %d, %v:\n%s", kind, code, err, out)
		}
		if err := r.Validate(time.Now()); err != nil || r.Kind != measure.Kind(kind) || r.DNS == nil {
			t.Errorf("%s --json: %v %+v", kind, err, r)
		}
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string // substring of stdout
		err  string // substring of stderr
	}{
		{"no command", nil, 2, "", "Commands:"},
		{"unknown command", []string{"bogus"}, 2, "", `unknown command "bogus"`},
		{"help", []string{"--help"}, 0, "identity", ""},
		{"dns help", []string{"dns", "--help"}, 0, "Examples:\n  anycatch-probe dns 193.0.14.129", ""},
		{"ping help", []string{"ping", "-h"}, 0, "ping_group_range", ""},
		{"trace help", []string{"trace", "--help"}, 0, "-proto", ""},
		{"identity help", []string{"identity", "--help"}, 0, "hostname.bind", ""},
		{"no target", []string{"identity"}, 2, "", "want exactly one SERVER"},
		{"two targets", []string{"ping", "127.0.0.1", "127.0.0.2"}, 2, "", "want exactly one TARGET"},
		{"unknown flag", []string{"dns", "--frobnicate", "127.0.0.1"}, 2, "", "flag provided but not defined: -frobnicate"},
		{"both families", []string{"ping", "-4", "-6", "127.0.0.1"}, 2, "", "mutually exclusive"},
		{"family mismatch", []string{"identity", "-4", "::1"}, 2, "", "not an IPv4 address but -4"},
		{"bad spec", []string{"dns", "--retries", "9", "127.0.0.1"}, 2, "", "dns.retries: 9 is outside 0..5"},
		{"bad ping count", []string{"ping", "-c", "0", "127.0.0.1"}, 2, "", "want at least one echo request"},
		{"ping count over limit", []string{"ping", "-c", "1000", "127.0.0.1"}, 2, "", "ping.count: 1000 is outside 1..100"},
		{"bad timeout", []string{"identity", "--timeout", "0s", "127.0.0.1"}, 2, "", "must be positive"},
		{"bad qclass", []string{"dns", "--class", "HS", "127.0.0.1"}, 2, "", "unknown qclass"},
		{"bad qtype", []string{"dns", "-t", "BOGUS", "127.0.0.1"}, 2, "", "unknown qtype"},
		{"version", []string{"version"}, 0, "anycatch-probe dev (go", ""},
		{"--version", []string{"--version"}, 0, "anycatch-probe dev", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stdout ∋ %q, stderr ∋ %q", code, tc.code, out, errOut, tc.out, tc.err)
			}
		})
	}
}

func TestPermissionHint(t *testing.T) {
	if permissionHint("open socket: listen ip4:icmp 0.0.0.0: socket: operation not permitted") == "" {
		t.Error("no hint for EPERM")
	}
	if permissionHint("timeout") != "" {
		t.Error("hint for an unrelated error")
	}
}

// TestPingTraceLoopback runs ping and trace against loopback only; it is
// skipped where ICMP sockets are not allowed (exit 3).
func TestPingTraceLoopback(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"ping v4", []string{"ping", "-c", "2", "-i", "20ms", "-W", "500ms", "127.0.0.1"}, []string{"2 packets transmitted, 2 received, 0% packet loss", "64 bytes from 127.0.0.1"}},
		{"ping v6", []string{"ping", "-c", "1", "-W", "500ms", "::1"}, []string{"1 packets transmitted, 1 received"}},
		{"trace", []string{"trace", "-q", "1", "-m", "3", "-w", "300ms", "127.0.0.1"}, []string{" 1  127.0.0.1  ", "destination reached in 1 hop\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code == exitCannotRun {
				t.Skipf("cannot measure here: %s", errOut)
			}
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
