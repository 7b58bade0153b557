# freshtoken: `make run` to try it locally, `make test` to run every test.
SHELL := /bin/bash
GO    ?= go
# The executable name must match host.json customHandler.description.defaultExecutablePath.
BIN   := freshtoken

.PHONY: all build dist package run test test-unit test-e2e faults simulate fuzz vet clean

all: build

build:
	$(GO) build -o $(BIN) ./handler

# The artifact for Azure (Linux plans): a static Linux amd64 binary at the app root.
dist:
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN) ./handler

# The deployable zip for Azure (Linux plans), dist/freshtoken.zip: host.json, the function.json
# files and the static Linux amd64 binary, stored with mode 0755 whatever machine builds it.
# Deploy it with: az functionapp deployment source config-zip -g <rg> -n <app> --src dist/freshtoken.zip
package:
	cd e2e && $(GO) run ./cmd/package -root .. -out ../dist/freshtoken.zip -go $(GO)

# Azurite (the Table Storage emulator) comes from npm, pinned by package-lock.json.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Starts Azurite, the local OAuth2 development server and the handler standalone, and prints
# the URL to open. Ctrl-C stops all three.
run: node_modules/.package-lock.json
	cd e2e && $(GO) build -o ../bin/devrun ./cmd/devrun
	./bin/devrun

vet:
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...

# Every test: unit, integration (Azurite) and end-to-end (the built handler driven as the
# Functions host drives it, against a real OAuth2 server).
test: node_modules/.package-lock.json vet
	$(GO) test -race -count=1 ./...
	cd e2e && $(GO) test -race -count=1 -timeout 20m ./...

# The full fault-injection suite (issue: never lose a refresh token).
faults: node_modules/.package-lock.json
	cd e2e && FAULT_RUNS=$${FAULT_RUNS:-200} $(GO) test -count=1 -timeout 60m -run 'TestFaults' -v ./faults/

# A simulated year of the real refresh code for every preset and timing policy (issue: a year
# without a lapse), printed one figures line per preset; the last line is the default timing's
# summary. SIM_SEED=n replays a seed; SIM_SCHEDULE tries another timer schedule. make test runs
# the same simulation shortened to 30 days.
simulate:
	@set -o pipefail; SIM_FULL=1 $(GO) test -count=1 -timeout 10m -run '^TestSimulate$$' -v ./internal/simulate/ \
	  | grep -E '^(simulate|policy|freshness)[ :]|_test\.go:|^(--- FAIL|FAIL|panic)'

# A short run of every fuzz target (FUZZTIME=30s by default per target).
fuzz:
	@set -e; for pkg in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$pkg; \
	  done; done

clean:
	rm -f $(BIN) $(BIN).exe
	rm -rf dist
