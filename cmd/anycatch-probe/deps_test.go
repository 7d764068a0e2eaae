package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// What the probe binary may link is checked with the rest of the module's
// dependency rules in internal/archtest.

// TestStaticBinary builds the probe the way releases do and checks it is
// statically linked (no ELF interpreter), logging its size.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "anycatch-probe")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -X main.version=test", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("anycatch-probe: %d bytes (%.1f MiB), CGO_ENABLED=0 -ldflags='-s -w'", st.Size(), float64(st.Size())/(1<<20))
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has an ELF interpreter: not statically linked")
		}
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(out), "anycatch-probe test ") {
		t.Errorf("built binary: version = %q, %v", out, err)
	}
}
