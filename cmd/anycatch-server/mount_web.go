package main

import "github.com/anycatch/anycatch/web"

// mountWeb wires the web role: the embedded UI at "/", the fallback route
// (the collector and API own their prefixes). The UI talks only to the
// public API, so with --roles web alone it needs an API role behind the
// same address.
func mountWeb(env *serveEnv) error {
	env.Mux.Handle("/", web.Handler())
	return nil
}
