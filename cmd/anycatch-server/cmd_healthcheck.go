package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/anycatch/anycatch/internal/cliflag"
	"io"
	"net/http"
	"time"
)

// cmdHealthcheck asks a running server's /healthz and fails unless it
// answers 200: for container health checks, where no curl exists.
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "the server's health endpoint")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: anycatch-server healthcheck [--url URL]\n\nExits 0 when the server and its database are healthy, 1 otherwise.")
		fs.PrintDefaults()
	}
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if err := cliflag.Exactly("healthcheck", pos, 0, ""); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s: %s", resp.Status, body)
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}
