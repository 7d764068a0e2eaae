// Package catchment is anycatch's domain logic, pure Go with no SQL or HTTP:
// mapping a server identity to the site that served it, tracking each
// probe's current site and the changes between sites, aggregating
// catchments by region, latency statistics, flap detection and path
// inflation. Everything here is a function of its inputs.
package catchment
