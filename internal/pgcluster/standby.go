package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// StartStandby makes a streaming hot standby of the running cluster
// primary in opts.DataDir, which must not hold a cluster yet, and starts
// it. It runs "pg_basebackup -R -X stream" over the primary's unix socket
// (initdb's default pg_hba.conf trusts local replication connections), so
// the copy has standby.signal and a primary_conninfo pointing back at the
// primary; the standby then follows the primary's WAL for as long as both
// run. Give the standby its own SocketDir or Port: both listen on unix
// sockets only. BinDir and RunAs default to the primary's.
//
// The standby is read-only. Stop it before stopping the primary to keep
// its log quiet (it retries the connection otherwise).
func StartStandby(ctx context.Context, primary *Cluster, opts Options) (*Cluster, error) {
	if opts.BinDir == "" {
		opts.BinDir = primary.bin
	}
	if opts.RunAs == "" {
		opts.RunAs = primary.opts.RunAs
	}
	if opts.Logger == nil {
		opts.Logger = primary.opts.Logger
	}
	if !primary.Running() && !primary.Attached() {
		return nil, errors.New("pgcluster: standby: the primary is not running")
	}
	c, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	if c.socketPath(c.socketDir) == primary.socketPath(primary.socketDir) {
		c.removeTmpSocket()
		return nil, errors.New("pgcluster: standby: same socket as the primary; set SocketDir or Port")
	}
	if Initialized(c.opts.DataDir) {
		c.removeTmpSocket()
		return nil, fmt.Errorf("pgcluster: standby: %s already holds a cluster", c.opts.DataDir)
	}
	if err := c.baseBackup(ctx, primary); err != nil {
		c.removeTmpSocket()
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.removeTmpSocket()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) baseBackup(ctx context.Context, primary *Cluster) error {
	start := time.Now()
	args := []string{
		"--pgdata", c.opts.DataDir,
		"--host", primary.socketDir,
		"--port", strconv.Itoa(primary.opts.Port),
		"--username", Superuser,
		"--wal-method", "stream",
		"--write-recovery-conf",
		"--checkpoint", "fast",
		"--no-password",
	}
	if c.opts.Unsafe {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "pg_basebackup"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.Env = c.env()
	cmd.Dir = c.opts.DataDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: pg_basebackup from %s: %w: %s", primary.opts.DataDir, err, tail(out, 2000))
	}
	// The copy carries the primary's server log; start the standby's own.
	_ = os.Remove(filepath.Join(c.opts.DataDir, "postgres.log"))
	c.opts.Logger.Info("postgres standby copied", "data_dir", c.opts.DataDir, "primary", primary.opts.DataDir,
		"elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
