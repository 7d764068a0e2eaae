// Package migrations holds anycatch's PostgreSQL schema as numbered SQL
// files (tern format), embedded so the server binary carries its schema.
// Files are applied in order by the store package; never edit a released
// file, add a new one.
package migrations

import "embed"

// FS holds the *.sql migration files.
//
//go:embed *.sql
var FS embed.FS
