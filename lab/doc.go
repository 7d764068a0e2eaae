// Package lab builds an anycast lab out of Linux network namespaces on one
// machine, for anycatch's end-to-end tests and for people trying anycatch
// without an Internet-wide deployment.
//
// A lab has anycast sites (a namespace each, the anycast service addresses
// on lo, Debian's NSD answering CHAOS hostname.bind/id.server and EDNS NSID
// with the site's identity, BIRD2 announcing the anycast prefixes over
// eBGP), transit routers (BIRD2, one AS each, forwarding on), clients
// (where probes run, default route through their transit) and a
// management network that reaches every client. Links with a one-way delay
// run through a userspace TUN forwarder (the kernel has no netem); others
// are veth pairs. Nothing is added to the host namespace; all addresses
// are in 198.18.0.0/15, 100.64.0.0/10 and 2001:db8::/32.
//
// The topology is a YAML file (LoadTopology) or the embedded default
// (DefaultTopology); Topology.Plan lays out names and addresses. Up builds
// and starts a lab and waits for BGP to converge; Lab.Truth reads from the
// routers which site every client's best path leads to and the RTT the
// configured delays imply; Lab.Withdraw and Lab.Restore move catchments;
// Lab.Down (or Down by name, after a crash) removes everything.
//
// An end-to-end test brings a lab up, runs something in a client, moves
// the catchment and reads the ground truth (TestLab and the e2e tests do
// exactly this; they run as root):
//
//	l, err := lab.Up(ctx, lab.DefaultTopology(), lab.Options{Name: name})
//	...
//	defer l.Down(ctx)
//	collector, err := l.ForwardCollector(ctx, 8080) // host 127.0.0.1:8080 for probes in clients
//	out, err := l.Exec(ctx, l.Clients()[0].Name, "dig", "+short", "@"+l.AnycastV4().String(), "hostname.bind", "CH", "TXT")
//	err = l.Withdraw(ctx, "ams")
//	truth, err := l.Truth(ctx) // truth.Clients[i].V4.Site, .ExpectedRTT
//
// Namespaces are "<instance>-<node>", so labs with different instance
// names run side by side. Everything needs root; see docs/lab.md.
//
// Importing this package installs a hook (init) that turns the process into
// one of the lab's daemons when ANYCATCH_LAB_DAEMON=1 is set; that is how Up
// starts its delay and collector forwarders from any binary, including test
// binaries, without a separate executable.
package lab
