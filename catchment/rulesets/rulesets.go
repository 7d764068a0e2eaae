// Package rulesets loads identity-to-site rules files: a list of anycast
// services, each with its addresses, identity source order and ordered
// rules. The default set for well-known public services is embedded
// (default.yaml); users can load their own file in the same format, as
// YAML or JSON. See docs/identity-rules.md for the format.
package rulesets

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/anycatch/anycatch/catchment"
)

//go:embed default.yaml
var defaultYAML []byte

// Service is one anycast service and its identity rules.
type Service struct {
	Name          string           `json:"name" yaml:"name"`
	Description   string           `json:"description,omitempty" yaml:"description,omitempty"`
	Addresses     []string         `json:"addresses,omitempty" yaml:"addresses,omitempty"`           // anycast addresses, for documentation and config examples
	IdentityOrder []string         `json:"identity_order,omitempty" yaml:"identity_order,omitempty"` // empty means catchment.DefaultIdentityOrder
	Rules         []catchment.Rule `json:"rules" yaml:"rules"`

	identifier *catchment.Identifier
}

// Identifier returns the service's compiled rules.
func (s *Service) Identifier() *catchment.Identifier { return s.identifier }

type file struct {
	Services []Service `json:"services" yaml:"services"`
}

var serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Default returns the embedded rules for well-known public services.
func Default() ([]Service, error) { return Parse(defaultYAML) }

// DefaultYAML returns the embedded rules file, e.g. as a template.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Load reads a rules file; an empty path means the embedded default.
func Load(path string) ([]Service, error) {
	if path == "" {
		return Default()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates a rules file, JSON when it starts with "{",
// YAML otherwise. Unknown fields are errors. Each service must have a
// unique name, parseable addresses and at least one rule, each rule a
// note; rules are validated by catchment.NewIdentifier.
func Parse(data []byte) ([]Service, error) {
	var f file
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("decode rules (json): %w", err)
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("decode rules (yaml): %w", err)
		}
	}
	if len(f.Services) == 0 {
		return nil, errors.New("rules: no services")
	}
	var errs []error
	seen := map[string]bool{}
	for i := range f.Services {
		s := &f.Services[i]
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("service %d (%s): %s", i, s.Name, fmt.Sprintf(format, a...)))
		}
		if !serviceName.MatchString(s.Name) {
			bad("name must match %s", serviceName)
		}
		if seen[s.Name] {
			bad("duplicate name")
		}
		seen[s.Name] = true
		for _, a := range s.Addresses {
			if _, err := netip.ParseAddr(a); err != nil {
				bad("address %q is not an IP address", a)
			}
		}
		if len(s.Rules) == 0 {
			bad("no rules")
		}
		for j, r := range s.Rules {
			if r.Note == "" {
				bad("rule %d: note is required (say where the format comes from and when it was checked)", j)
			}
		}
		idf, err := catchment.NewIdentifier(s.IdentityOrder, s.Rules)
		if err != nil {
			bad("%v", err)
			continue
		}
		s.identifier = idf
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f.Services, nil
}

// Find returns the service named name, or nil.
func Find(services []Service, name string) *Service {
	for i := range services {
		if services[i].Name == name {
			return &services[i]
		}
	}
	return nil
}
