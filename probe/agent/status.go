package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/anycatch/anycatch/measure"
	"github.com/anycatch/anycatch/probe/spool"
)

// Files in the state directory.
const (
	IdentityFile = "identity.json" // key pair and probe id (0600)
	StatusFile   = "status.json"   // written every StatusEvery for `anycatch-probe status`
	ScheduleFile = "schedule.json" // last schedule, so a restart measures before the collector answers
	SpoolDir     = "spool"
)

// Status is what the agent reports about itself in StatusFile.
type Status struct {
	State        string               `json:"state"` // "enrolling", "running", "stopped"
	Probe        string               `json:"probe,omitempty"`
	Collector    string               `json:"collector"`
	Version      string               `json:"version"`
	PID          int                  `json:"pid"`
	Started      time.Time            `json:"started"`
	Updated      time.Time            `json:"updated"`
	StatusEvery  float64              `json:"status_every_sec"` // how often Updated moves while running
	AllowPrivate bool                 `json:"allow_private"`
	MaxPPS       int                  `json:"max_pps"` // effective ceiling (local, or the collector's if lower)
	MaxConc      int                  `json:"max_concurrent"`
	Capabilities measure.Capabilities `json:"capabilities"`
	Limitations  []string             `json:"limitations,omitempty"` // what this host cannot do, e.g. without CAP_NET_RAW

	Schedule  ScheduleStatus               `json:"schedule"`
	Runs      map[measure.Kind]*KindCounts `json:"runs"`
	Skipped   int64                        `json:"skipped"` // runs skipped: previous run of it still busy or queue full
	Spool     spool.Stats                  `json:"spool"`
	Upload    UploadStatus                 `json:"upload"`
	Live      LiveStatus                   `json:"live"`
	Heartbeat time.Time                    `json:"last_heartbeat,omitzero"`
	Errors    []ErrorEntry                 `json:"last_errors,omitempty"` // newest last, at most 10
}

// KindCounts counts runs of one measurement kind.
type KindCounts struct {
	Runs   int64 `json:"runs"`
	Errors int64 `json:"errors"` // results carrying Error (could not measure)
}

// ScheduleStatus describes the schedule in use.
type ScheduleStatus struct {
	Version      string    `json:"version,omitempty"`
	FetchedAt    time.Time `json:"fetched_at,omitzero"` // last time a new schedule arrived
	CheckedAt    time.Time `json:"checked_at,omitzero"` // last successful fetch or 304
	Measurements int       `json:"measurements"`        // scheduled and accepted
	Refused      []Refusal `json:"refused,omitempty"`   // scheduled but refused by local policy
}

// UploadStatus counts the collector's verdicts.
type UploadStatus struct {
	Accepted     int64     `json:"accepted"`
	Duplicate    int64     `json:"duplicate"`
	Rejected     int64     `json:"rejected"`
	LastOK       time.Time `json:"last_ok,omitzero"`
	BackoffUntil time.Time `json:"backoff_until,omitzero"`
}

// LiveStatus describes the live channel to the collector.
type LiveStatus struct {
	// State is "connecting", "connected", "reconnecting" (a connection
	// failed or ended; retrying with backoff), "polling" (the collector
	// does not offer the channel; schedule polling only) or "disabled".
	State     string    `json:"state"`
	Since     time.Time `json:"since,omitzero"`
	Connects  int64     `json:"connects"`             // successful handshakes since start
	Nudges    int64     `json:"nudges"`               // measure-now requests received
	LastError string    `json:"last_error,omitempty"` // why the channel last failed
}

// ErrorEntry is one recent error.
type ErrorEntry struct {
	Time    time.Time `json:"time"`
	Op      string    `json:"op"`
	Message string    `json:"message"`
}

// ReadStatus reads the status file in stateDir.
func ReadStatus(stateDir string) (*Status, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, StatusFile))
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	return &s, nil
}

// Healthy reports whether s describes a running agent that updated its
// status recently (within three status periods).
func (s *Status) Healthy(now time.Time) error {
	if s.State != "running" && s.State != "enrolling" {
		return fmt.Errorf("agent is %s", s.State)
	}
	period := time.Duration(s.StatusEvery * float64(time.Second))
	if period <= 0 {
		period = 15 * time.Second
	}
	if age := now.Sub(s.Updated); age > 3*period {
		return fmt.Errorf("status is %s old; is the agent running?", age.Round(time.Second))
	}
	return nil
}
