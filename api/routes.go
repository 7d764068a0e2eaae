package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// routes is the whole route tree of the API. Every route here is listed in
// openapi.json, and TestOpenAPIMatchesRoutes keeps the two in step.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &Error{Code: CodeNotFound, Message: "no such endpoint"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: &Error{Code: CodeInvalid, Message: "method not allowed"}})
	})

	r.Route("/api/v1", func(r chi.Router) {
		r.Use(compress)
		r.Get("/openapi.json", s.serveOpenAPI)

		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)

			// Reads: any key, or anonymous when allowed.
			r.Get("/targets", s.wrap(s.listTargets))
			r.Get("/targets/{target}", s.wrap(s.getTarget))
			r.Get("/targets/{target}/sites", s.wrap(s.listSites))
			r.Get("/targets/{target}/rules", s.wrap(s.listRules))
			r.Get("/targets/{target}/catchment", s.cached(s.wrap(s.getCatchment)))
			r.Get("/targets/{target}/catchment.geojson", s.cached(s.wrap(s.getCatchmentGeoJSON)))
			r.Get("/targets/{target}/latency", s.cached(s.wrap(s.getLatency)))
			r.Get("/targets/{target}/changes", s.wrap(s.getChanges))
			r.Get("/targets/{target}/changes/times", s.wrap(s.getChangeTimes))
			r.Get("/targets/{target}/unmapped", s.wrap(s.getUnmapped))
			r.Get("/targets/{target}/speed-of-light", s.wrap(s.getSpeedOfLight))
			r.Get("/targets/{target}/census", s.wrap(s.getCensus))
			r.Get("/targets/{target}/census/rounds", s.wrap(s.listCensusRounds))
			r.Get("/targets/{target}/bursts", s.wrap(s.listBursts))
			r.Get("/probes", s.wrap(s.listProbes))
			r.Get("/probes/{probe}", s.wrap(s.getProbe))
			r.Get("/results", s.wrap(s.listResults))
			r.Post("/measurements", s.wrap(s.createMeasurement)) // read keys: registered targets; admin: also addresses
			r.Get("/measurements/{id}", s.wrap(s.getMeasurement))
			r.Get("/alerts", s.wrap(s.withAlerts(s.listAlerts)))
			r.Get("/alerts/rules", s.wrap(s.withAlerts(s.listAlertRules)))

			// Writes: admin keys only.
			r.Group(func(r chi.Router) {
				r.Use(s.requireAdmin)
				r.Post("/targets", s.wrap(s.createTarget))
				r.Patch("/targets/{target}", s.wrap(s.updateTarget))
				r.Delete("/targets/{target}", s.wrap(s.deleteTarget))
				r.Put("/targets/{target}/sites/{site}", s.wrap(s.putSite))
				r.Delete("/targets/{target}/sites/{site}", s.wrap(s.deleteSite))
				r.Put("/targets/{target}/rules", s.wrap(s.replaceRules))
				r.Put("/targets/{target}/census", s.wrap(s.putCensus))
				r.Post("/targets/{target}/census/rounds", s.wrap(s.createCensusRound))
				r.Post("/targets/{target}/census/sites/{site}/token", s.wrap(s.createSiteToken))
				r.Patch("/probes/{probe}", s.wrap(s.patchProbe))

				r.Get("/admin/keys", s.wrap(s.listKeys))
				r.Post("/admin/keys", s.wrap(s.createKey))
				r.Delete("/admin/keys/{id}", s.wrap(s.revokeKey))
				r.Get("/admin/tokens", s.wrap(s.listTokens))
				r.Post("/admin/tokens", s.wrap(s.createToken))
				r.Delete("/admin/tokens/{id}", s.wrap(s.revokeToken))

				r.Post("/alerts/rules", s.wrap(s.withAlerts(s.createAlertRule)))
				r.Patch("/alerts/rules/{id}", s.wrap(s.withAlerts(s.patchAlertRule)))
				r.Delete("/alerts/rules/{id}", s.wrap(s.withAlerts(s.deleteAlertRule)))
				r.Get("/alerts/webhooks", s.wrap(s.withAlerts(s.listWebhooks)))
				r.Post("/alerts/webhooks", s.wrap(s.withAlerts(s.createWebhook)))
				r.Patch("/alerts/webhooks/{id}", s.wrap(s.withAlerts(s.patchWebhook)))
				r.Delete("/alerts/webhooks/{id}", s.wrap(s.withAlerts(s.deleteWebhook)))
				r.Post("/alerts/webhooks/{id}/test", s.wrap(s.withAlerts(s.testWebhook)))
				r.Get("/alerts/webhooks/{id}/deliveries", s.wrap(s.withAlerts(s.listDeliveries)))
			})
		})
	})
	return r
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
