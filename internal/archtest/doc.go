// Package archtest holds no code: its test is the module's one dependency
// policy, checked with `go list`: what each package (sub-packages
// included, e.g. atlas/...) may import transitively, that only store
// imports SQL drivers itself, and that every package is covered by a
// rule. A forbidden import fails CI instead of slipping in (the probe
// linking a database driver, domain logic speaking SQL or HTTP, the API
// reaching around its store interface).
package archtest
