package main

// mountWeb wires the web role: mount its handler on env.Mux under
// "/" (and register its metrics on env.Metrics, start its background
// work with env.Group.Go). Owned by the web engineer; this stub mounts
// nothing.
func mountWeb(env *serveEnv) error {
	env.Log.Warn("role not wired into this build yet", "role", "web")
	return nil
}
