# anycatch — plain make targets. `make help` lists them.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin
PKGS      := ./...

.PHONY: help build test test-short bench lint fuzz demo run release web web-check clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## build the probe (static) and the server into ./bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/anycatch-probe ./cmd/anycatch-probe
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/anycatch-site ./cmd/anycatch-site
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/anycatch-server ./cmd/anycatch-server
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/anycatch-lab ./cmd/anycatch-lab

test: web-check ## run every test: unit, store (throwaway Postgres), lab, browser and end-to-end (needs root)
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -count=1 -timeout 30m $$($(GO) list $(PKGS) | grep -v '/e2e$$')
	@# The end-to-end test runs last and verbose, so its measured catchment
	@# detection delay shows in the log.
	$(GO) test -count=1 -timeout 45m -v ./e2e

test-short: ## unit tests only (no root, no lab)
	$(GO) test -short -count=1 $(PKGS)

bench: ## run the Go benchmarks (results go to docs/benchmarks.md by hand, with the command)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for fz in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$fz"; $(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

lint: ## vet + gofmt
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

demo: ## the whole platform locally: server + anycast lab + a probe per lab client (root)
	./deploy/demo.sh

run: demo

release: ## cross-build the probe for linux amd64/arm64/armv7 and the server for amd64/arm64
	@mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/anycatch-probe-linux-amd64 ./cmd/anycatch-probe
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/anycatch-probe-linux-arm64 ./cmd/anycatch-probe
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/anycatch-probe-linux-armv7 ./cmd/anycatch-probe
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/anycatch-server-linux-amd64 ./cmd/anycatch-server
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/anycatch-server-linux-arm64 ./cmd/anycatch-server
	@ls -l dist

web: ## rebuild the embedded UI bundle (web/dist) from web/ui with the pinned npm packages
	web/ui/build.sh

web-check: ## fail if the committed web/dist is not what `make web` builds (skipped without npm)
	@if command -v npm >/dev/null; then \
	  web/ui/build.sh >/dev/null && git diff --exit-code --stat -- web/dist && \
	  test -z "$$(git status --porcelain -- web/dist)" || { echo "web/dist is stale: run 'make web' and commit it"; exit 1; }; \
	else echo "web-check: npm not installed, not rebuilding the UI bundle"; fi

clean:
	rm -rf $(BIN) dist
