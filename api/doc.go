// Package api is anycatch's public REST API under /api/v1: targets, sites
// and rules, probes, catchment and latency reports, catchment changes, raw
// results (JSON pages, NDJSON streams, Atlas-like JSON), unmapped
// identities, and admin endpoints for API keys and enrollment tokens.
//
// The whole route tree is in routes.go. Handlers reach the database only
// through the [Store] interface declared here (implemented over package
// store by api/pgstore), and aggregate with the pure functions of package
// catchment. Errors always have the shape
//
//	{"error":{"code":"invalid","message":"…","param":"…"}}
//
// with codes mapped to HTTP statuses in one table (errors.go). The OpenAPI
// document served at /api/v1/openapi.json is embedded from openapi.json and
// a test keeps it in step with the routes.
package api
