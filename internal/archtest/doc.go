// Package archtest holds no code: its test enforces anycatch's dependency
// direction with `go list -deps`, so a forbidden import fails CI instead of
// slipping in (the probe linking a database driver, domain logic speaking
// SQL or HTTP, the API reaching around its store interface).
package archtest
