// Package store is the only package in anycatch that speaks SQL. It owns the
// pgx pool, the migrations runner, result ingest (COPY into a staging table,
// merged with ON CONFLICT DO NOTHING), catchment state, partition upkeep and
// every query the collector and the API need. Callers see Go types, never
// rows or SQL.
package store
