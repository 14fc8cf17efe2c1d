# Spoor — make help lists the targets.
GO        ?= go
BIN       := bin/spoor
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
TELEMETRYGEN_VERSION := v0.161.0
GOBIN     := $(shell $(GO) env GOPATH)/bin

.DEFAULT_GOAL := help
.PHONY: help build run test test-short bench lint fmt ui tools clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/spoor (UI included)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/spoor

run: build ## build and start spoor with its embedded defaults (SPOOR_* env vars apply)
	./$(BIN)

test: ## run every test (race detector on), installing what the tests need
	$(GO) mod download
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...

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

tools: ## install telemetrygen (the load generator of make bench)
	@test -x $(GOBIN)/telemetrygen || $(GO) install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$(TELEMETRYGEN_VERSION)

lint: ## go vet and gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## format the Go code
	gofmt -w $$(git ls-files '*.go')

ui: ## build the web UI (not built yet: the binary serves a placeholder page)
	@echo "The UI has no build yet; bin/spoor embeds web/placeholder."

clean: ## remove build output
	rm -rf bin
