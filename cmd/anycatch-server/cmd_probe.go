package main

import (
	"context"
	"fmt"
	"io"
)

// cmdProbe disables or enables a probe or census site agent on the
// database, like PATCH /api/v1/probes/{probe}:
//
//	anycatch-server probe disable ID | probe enable ID
//
// Running collectors on the same database learn of it at once (migration
// 008's notification): a disabled probe's live channel closes and its
// signed requests get 403.
func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := newAdminCmd("probe", args, stderr, stdout, "disable", "enable")
	if err != nil {
		return err
	}
	db, err := c.open(ctx, args[1:], 1)
	if err != nil {
		return err
	}
	defer db.close()
	status := map[string]string{"disable": "disabled", "enable": "active"}[c.action]
	if err := db.SetProbeStatus(ctx, c.arg(0), status); err != nil {
		return fmt.Errorf("probe %s %s: %w", c.action, c.arg(0), err)
	}
	fmt.Fprintf(stderr, "probe %s %sd\n", c.arg(0), c.action)
	return nil
}
