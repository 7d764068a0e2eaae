package upload

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Identity is a probe's credential: its ed25519 key pair and, once
// enrolled, the probe id the collector gave it. It lives in one 0600 JSON
// file in the probe's state directory; losing it means enrolling again.
type Identity struct {
	Probe      string             // "" until enrolled
	Collector  string             // collector URL it enrolled with
	PrivateKey ed25519.PrivateKey // never leaves the state directory
	Created    time.Time
	Enrolled   time.Time // zero until enrolled
}

type identityFile struct {
	Probe     string    `json:"probe,omitempty"`
	Collector string    `json:"collector"`
	PublicKey []byte    `json:"public_key"`
	Seed      []byte    `json:"private_key_seed"`
	Created   time.Time `json:"created"`
	Enrolled  time.Time `json:"enrolled,omitzero"`
}

// NewIdentity creates a fresh key pair for collector.
func NewIdentity(collector string, now time.Time) (*Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new identity: %w", err)
	}
	return &Identity{Collector: collector, PrivateKey: priv, Created: now.UTC()}, nil
}

// PublicKey returns the key the collector verifies signatures with.
func (id *Identity) PublicKey() ed25519.PublicKey {
	return id.PrivateKey.Public().(ed25519.PublicKey)
}

// LoadIdentity reads an identity file. A missing file gives an error
// wrapping os.ErrNotExist.
func LoadIdentity(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	var f identityFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("load identity %s: %w", path, err)
	}
	if len(f.Seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("load identity %s: private key seed has %d bytes, want %d", path, len(f.Seed), ed25519.SeedSize)
	}
	id := &Identity{Probe: f.Probe, Collector: f.Collector, PrivateKey: ed25519.NewKeyFromSeed(f.Seed), Created: f.Created, Enrolled: f.Enrolled}
	if len(f.PublicKey) > 0 && !id.PublicKey().Equal(ed25519.PublicKey(f.PublicKey)) {
		return nil, fmt.Errorf("load identity %s: public key does not match the private key", path)
	}
	return id, nil
}

// Save writes the identity atomically with mode 0600.
func (id *Identity) Save(path string) error {
	if len(id.PrivateKey) != ed25519.PrivateKeySize {
		return errors.New("save identity: no private key")
	}
	b, err := json.MarshalIndent(identityFile{
		Probe: id.Probe, Collector: id.Collector, PublicKey: id.PublicKey(),
		Seed: id.PrivateKey.Seed(), Created: id.Created, Enrolled: id.Enrolled,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	if err := WriteFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path via a synced temporary file and a
// rename, so readers see the old or the new content, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
