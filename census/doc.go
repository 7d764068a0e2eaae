// Package census is the pure logic of the service-side catchment census
// (the Verfploeter method): one anycast site sends ICMP echo requests from
// the anycast address to one address per /24 (or /48) of a hitlist, and
// every site that receives an echo reply learns that the replying network
// is in its catchment.
//
// It holds no sockets and no SQL: the probe payload format and its parser
// (every reply is distrusted: it must carry a keyed MAC over round, transmit
// time and the replying address), hitlist and opt-out parsing, the send
// pacer (a token bucket with a hard ceiling), and the aggregation of a
// round's replies into per-site prefix counts and changes between rounds.
// The agent (package site) and the server use it.
package census
