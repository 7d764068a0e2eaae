// Package routing turns a site's BGP speaker's view into routing events
// for the target's prefixes. The first source is BMP (RFC 7854): Reader
// frames a BMP byte stream into whole messages, Decode turns one message
// into events (announced / withdrawn, AS path, communities, peer,
// timestamp). Pure Go: no SQL, no HTTP; parsing is done by gobgp's
// packet/bmp and packet/bgp.
package routing
