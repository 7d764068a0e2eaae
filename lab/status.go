package lab

import (
	"context"
	"os"
	"strings"
)

// Status is a health summary of a running lab.
type Status struct {
	Name          string          `json:"name"`
	StateDir      string          `json:"state_dir"`
	Namespaces    map[string]bool `json:"namespaces"` // name -> exists
	Procs         []ProcStatus    `json:"procs"`
	Sessions      []BGPSession    `json:"bgp_sessions"`
	CollectorPort int             `json:"collector_port,omitempty"`
}

// ProcStatus is one recorded lab process.
type ProcStatus struct {
	PID   int    `json:"pid"`
	Role  string `json:"role"`
	Node  string `json:"node"`
	Alive bool   `json:"alive"`
}

// BGPSession is one BIRD protocol line of "show protocols".
type BGPSession struct {
	Node  string `json:"node"`
	Proto string `json:"proto"`
	State string `json:"state"` // up/down/start
	Info  string `json:"info"`  // Established, Active, Connect, ...
}

// Status reports namespaces, processes and BGP sessions.
func (l *Lab) Status(ctx context.Context) (Status, error) {
	l.mu.Lock()
	st := l.st
	l.mu.Unlock()
	s := Status{Name: l.opts.Name, StateDir: l.opts.StateDir, Namespaces: map[string]bool{}, CollectorPort: st.CollectorPort}
	for _, ns := range l.plan.Namespaces() {
		_, err := os.Stat("/run/netns/" + ns)
		s.Namespaces[ns] = err == nil
	}
	for _, p := range st.Procs {
		s.Procs = append(s.Procs, ProcStatus{PID: p.PID, Role: p.Role, Node: p.Node, Alive: procAlive(p.PID) && ownedBy(p.PID, l.opts.Name, l.opts.StateDir)})
	}
	for _, n := range l.plan.Nodes {
		if n.Kind == KindClient {
			continue
		}
		out, err := l.birdc(ctx, n.Name, "show", "protocols")
		if err != nil {
			s.Sessions = append(s.Sessions, BGPSession{Node: n.Name, State: "bird unreachable"})
			continue
		}
		s.Sessions = append(s.Sessions, parseProtocols(n.Name, out)...)
	}
	return s, nil
}

// parseProtocols reads the BGP lines of birdc "show protocols":
// "n_euw_v4   BGP   ---   up   10:00:00.000  Established".
func parseProtocols(node, out string) []BGPSession {
	var ss []BGPSession
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != "BGP" {
			continue
		}
		s := BGPSession{Node: node, Proto: f[0], State: f[3]}
		if len(f) > 5 {
			s.Info = strings.Join(f[5:], " ")
		}
		ss = append(ss, s)
	}
	return ss
}
