# Spoor — make help lists the targets.
GO        ?= go
BIN       := bin/spoor
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
TELEMETRYGEN_VERSION := v0.161.0
GOBIN     := $(shell $(GO) env GOPATH)/bin

.DEFAULT_GOAL := help
.PHONY: help build run test test-short test-ui bench bench-ui bench-compare lint fmt ui ui-deps chromium tools clean fuzz soak

UI_DIR    := web/ui
CHROMIUM  ?= /usr/bin/chromium

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/spoor, embedding web/dist/ui when make ui has built it
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/spoor

run: ui ## build everything (UI included) and start spoor with its embedded defaults (SPOOR_* env vars apply)
	$(MAKE) build
	./$(BIN)

test: ## run every test (race detector on), installing what the tests need
	$(GO) mod download
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...
	$(MAKE) test-ui

test-ui: ui-deps chromium ## UI unit tests (vitest), then browser e2e in headless chromium against bin/spoor fed by spoor demo
	cd $(UI_DIR) && npm run typecheck && npm test
	$(MAKE) ui
	$(MAKE) build
	cd $(UI_DIR) && SPOOR_BIN=$(CURDIR)/$(BIN) CHROMIUM=$(CHROMIUM) node e2e/run.mjs

test-short: ## the tests without the race detector (faster)
	$(GO) test -timeout 10m ./...

bench: build tools ## end-to-end benchmark of bin/spoor (telemetrygen), the trace store and every query surface on 5M spans, Go micro-benchmarks
	$(GO) run ./internal/bench -spoor $(BIN) -telemetrygen $(GOBIN)/telemetrygen
	$(GO) run ./internal/storebench -spans 5000000
	$(GO) run ./internal/querybench -spans 5000000
	$(GO) test -run '^$$' -bench . -benchtime 2s ./storage/...
	$(GO) test -run '^$$' -bench . -benchmem ./sampler/...
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 4000x ./analytics/...
	$(GO) test -count=1 -run '^TestErrorSpanToWebhookDelay$$' -v ./e2e/ | grep 'error span'
	$(GO) test -count=1 -run '^$$' -bench AnalyticsShareOfCPU -benchtime 2x ./e2e/
	$(GO) test -count=1 -run '^$$' -bench SamplerShareOfCPU -benchtime 3x ./e2e/
	$(MAKE) bench-ui

BASE ?= HEAD~1
bench-compare: ## spoor's CPU per span against a build of BASE (a git ref, default HEAD~1), both side by side on one load
	@dir=$$(mktemp -d) && trap 'rm -rf '$$dir EXIT && \
	git archive $(BASE) | tar -x -C $$dir && \
	(cd $$dir && $(GO) build -o $$dir/spoor-base ./cmd/spoor) && \
	SPOOR_BENCH_BASE_BIN=$$dir/spoor-base $(GO) test -count=1 -run '^$$' -bench CompareBuilds -benchtime 4x ./e2e/

bench-ui: ui-deps chromium ## UI figures: search page answer time, 10,000-span trace render time (headless chromium)
	$(MAKE) ui
	$(MAKE) build
	cd $(UI_DIR) && SPOOR_BIN=$(CURDIR)/$(BIN) CHROMIUM=$(CHROMIUM) node e2e/bench.mjs

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each (default 30s), then list the failures; seed corpora live in each package's testdata/fuzz
	@failed=""; \
	for file in $$(git ls-files -co --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz'); do \
		pkg=./$$(dirname $$file); \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg || failed="$$failed $$pkg:$$target"; \
		done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz targets that failed:$$failed"; exit 1; fi

SOAK_DURATION ?= 30m
SOAK_INTERVAL ?= 1m
soak: build tools ## not part of make test: spoor demo + telemetrygen against one spoor for SOAK_DURATION (30m), RSS, goroutines, open files and disk every SOAK_INTERVAL
	$(GO) run ./internal/soak -spoor $(BIN) -telemetrygen $(GOBIN)/telemetrygen -duration $(SOAK_DURATION) -interval $(SOAK_INTERVAL)

tools: ## install telemetrygen (the load generator of make bench)
	@test -x $(GOBIN)/telemetrygen || $(GO) install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$(TELEMETRYGEN_VERSION)

lint: ## go vet and gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## format the Go code
	gofmt -w $$(git ls-files '*.go')

ui: ui-deps ## build the web UI into web/dist/ui (embedded by the next make build; without it the binary serves a placeholder)
	cd $(UI_DIR) && npm run build

# npm ci only when package-lock.json changed since the last install.
ui-deps: $(UI_DIR)/node_modules/.spoor-installed
$(UI_DIR)/node_modules/.spoor-installed: $(UI_DIR)/package-lock.json
	@command -v npm >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
	  || { echo "make ui needs Node.js 20.19 or later with npm (Vite 8); found: $$(node --version 2>/dev/null || echo none)"; exit 1; }
	cd $(UI_DIR) && npm ci --no-audit --no-fund
	@touch $@

chromium: ## install Debian's chromium for the browser tests when it is missing
	@test -x $(CHROMIUM) && exit 0; \
	echo "$(CHROMIUM) missing: installing Debian's chromium"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	  echo "cannot install chromium: not root and no sudo; install it (apt-get install -y chromium) or set CHROMIUM=/path"; exit 1; fi; \
	command -v apt-get >/dev/null || { echo "cannot install chromium: no apt-get; install it yourself or set CHROMIUM=/path"; exit 1; }; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium && test -x $(CHROMIUM) \
	  || { echo "chromium could not be installed; the browser tests cannot run"; exit 1; }

clean: ## remove build output
	rm -rf bin web/dist/ui
