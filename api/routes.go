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
			r.Get("/targets", s.listTargets)
			r.Get("/targets/{target}", s.getTarget)
			r.Get("/targets/{target}/sites", s.listSites)
			r.Get("/targets/{target}/rules", s.listRules)
			r.Get("/targets/{target}/catchment", s.cached(s.getCatchment))
			r.Get("/targets/{target}/catchment.geojson", s.cached(s.getCatchmentGeoJSON))
			r.Get("/targets/{target}/latency", s.cached(s.getLatency))
			r.Get("/targets/{target}/changes", s.getChanges)
			r.Get("/targets/{target}/changes/times", s.getChangeTimes)
			r.Get("/targets/{target}/unmapped", s.getUnmapped)
			r.Get("/targets/{target}/speed-of-light", s.getSpeedOfLight)
			r.Get("/targets/{target}/census", s.getCensus)
			r.Get("/targets/{target}/census/rounds", s.listCensusRounds)
			r.Get("/targets/{target}/bursts", s.listBursts)
			r.Get("/probes", s.listProbes)
			r.Get("/probes/{probe}", s.getProbe)
			r.Get("/results", s.listResults)
			r.Post("/measurements", s.createMeasurement) // read keys: registered targets; admin: also addresses
			r.Get("/measurements/{id}", s.getMeasurement)
			r.Get("/alerts", s.withAlerts(s.listAlerts))
			r.Get("/alerts/rules", s.withAlerts(s.listAlertRules))

			// Writes: admin keys only.
			r.Group(func(r chi.Router) {
				r.Use(s.requireAdmin)
				r.Post("/targets", s.createTarget)
				r.Patch("/targets/{target}", s.updateTarget)
				r.Delete("/targets/{target}", s.deleteTarget)
				r.Put("/targets/{target}/sites/{site}", s.putSite)
				r.Delete("/targets/{target}/sites/{site}", s.deleteSite)
				r.Put("/targets/{target}/rules", s.replaceRules)
				r.Put("/targets/{target}/census", s.putCensus)
				r.Post("/targets/{target}/census/rounds", s.createCensusRound)
				r.Post("/targets/{target}/census/sites/{site}/token", s.createSiteToken)
				r.Patch("/probes/{probe}", s.patchProbe)

				r.Get("/admin/keys", s.listKeys)
				r.Post("/admin/keys", s.createKey)
				r.Delete("/admin/keys/{id}", s.revokeKey)
				r.Get("/admin/tokens", s.listTokens)
				r.Post("/admin/tokens", s.createToken)
				r.Delete("/admin/tokens/{id}", s.revokeToken)

				r.Post("/alerts/rules", s.withAlerts(s.createAlertRule))
				r.Patch("/alerts/rules/{id}", s.withAlerts(s.patchAlertRule))
				r.Delete("/alerts/rules/{id}", s.withAlerts(s.deleteAlertRule))
				r.Get("/alerts/webhooks", s.withAlerts(s.listWebhooks))
				r.Post("/alerts/webhooks", s.withAlerts(s.createWebhook))
				r.Patch("/alerts/webhooks/{id}", s.withAlerts(s.patchWebhook))
				r.Delete("/alerts/webhooks/{id}", s.withAlerts(s.deleteWebhook))
				r.Post("/alerts/webhooks/{id}/test", s.withAlerts(s.testWebhook))
				r.Get("/alerts/webhooks/{id}/deliveries", s.withAlerts(s.listDeliveries))
			})
		})
	})
	return r
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
