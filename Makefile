# Kite's build. `make` alone lists the targets; `make run` and `make test` are the two
# commands of the README, and every CI step (.ci/run) is a target here.
#
# Tools are installed outside the clone, under $(KITE_CACHE), with the version in the
# file name, so fresh clones (CI) reuse them and a version bump reinstalls.

.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-builtin-rules

GO ?= go
KITE_CACHE ?= $(HOME)/.cache/kite
FUZZTIME ?= 30s
CONFORMANCE_DIR ?= ../shared/conformance/kestra

# golangci-lint must be built by a Go at least as new as the code it checks, so the
# cached binary is keyed by the Go minor version too: a Go bump rebuilds it.
GOLANGCI_LINT_VERSION := v2.15.0
GO_MINOR := $(shell $(GO) env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')
GOLANGCI_LINT_DIR := $(KITE_CACHE)/bin/golangci-lint-$(GOLANGCI_LINT_VERSION)-go$(GO_MINOR)
GOLANGCI_LINT := $(GOLANGCI_LINT_DIR)/golangci-lint

# Go files we format and check: not generated code (gen/, *.pb.go) nor test data.
GO_FILES = find . -name '*.go' -not -path './.git/*' -not -path './bin/*' \
	-not -path '*/testdata/*' -not -path '*/gen/*' -not -name '*.pb.go'

# `make test` runs without -race: on CI's 2 cores the race detector makes tests several
# times slower and hungrier, and the 90-minute budget must also hold the integration
# suite with a real Kafka and OpenSearch. Run `make test-race` for concurrent code
# (streams, services, executor) before you submit it.
GO_TEST := $(GO) test -count=1

.PHONY: help build run test unit test-race lint fmt tools conformance fuzz bench bench-core bench-files chaos tidy clean \
	kafka-up kafka-down

help: ## list the targets (the default goal)
	@echo "Usage: make TARGET   (README: make run, make test)"
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN { FS = ":.*## " } { printf "  %-12s %s\n", $$1, $$2 }'

build: ## build bin/kite
	$(GO) build -o bin/kite ./cmd/kite

# `run` starts every role in this process with the embedded broker, its data in .kite/
# (kept between runs: executions and flows survive a restart), applies examples/flows,
# and prints where the API listens and what to try. Ctrl-C stops it.
run: build ## build bin/kite and start standalone Kite with the example flows (Ctrl-C stops it)
	@echo "Starting standalone Kite (data in .kite/). In another terminal, try:"
	@echo "  bin/kite flow list"
	@echo "  bin/kite execution run kite.examples hello-world --input name=you --follow"
	@echo "  bin/kite execution run kite.examples files --input data=@README.md --wait -o json"
	@echo "  bin/kite execution files EXECUTION_ID --download"
	@echo "  bin/kite search executions 'namespace:kite*' --since 1h"
	@echo "  bin/kite stats executions --since 24h --interval 1h"
	@echo "  bin/kite flow test examples/flows/hello-world.yaml   (in-process, no server)"
	@echo
	bin/kite server standalone --data-dir .kite --apply examples/flows

# The real Kafka of the integration tests (integration/kafka/kafka.sh): jars from Maven
# Central cached in $(KITE_CACHE)/kafka, one KRaft node on 127.0.0.1 with a free port.
# `make test` starts a broker of its own around `go test` and stops it even when tests fail;
# `make unit` runs without it (those tests skip). `make kafka-up` keeps one running for
# `go test` by hand: `source bin/kafka.env` first.
KAFKA_SH := integration/kafka/kafka.sh
KAFKA_DIR := $(CURDIR)/bin/kafka

test: lint proto-check helm-check ## install tools, lint, check proto/gen is current, then run all tests with a real Kafka, OpenSearch and fake-gcs-server (what CI runs)
	GO=$(GO) integration/kafka/with-kafka.sh integration/opensearch/with-opensearch.sh integration/gcs/with-gcs.sh $(GO_TEST) ./...

unit: ## run all tests, nothing else (no real Kafka, OpenSearch or GCS emulator: their tests skip)
	$(GO_TEST) ./...

kafka-up: ## start a real Kafka for `go test` by hand; address in bin/kafka.env
	@mkdir -p bin
	@GO=$(GO) $(KAFKA_SH) fetch
	@GO=$(GO) $(KAFKA_SH) start $(KAFKA_DIR) | sed -n 's/^KAFKA_BROKERS=//p' > bin/kafka.env.tmp
	@printf 'export KITE_REAL_KAFKA=1 KITE_KAFKA_BROKERS=%s\n' "$$(cat bin/kafka.env.tmp)" > bin/kafka.env
	@rm -f bin/kafka.env.tmp
	@cat bin/kafka.env
	@echo "run: source bin/kafka.env && go test ./...   then: make kafka-down"

kafka-down: ## stop the Kafka of kafka-up
	@$(KAFKA_SH) stop $(KAFKA_DIR)
	@rm -f bin/kafka.env

test-race: ## run all tests with the race detector (slow on 2 cores)
	$(GO_TEST) -race ./...

lint: tools ## gofmt check, go vet and golangci-lint
	@echo "==> gofmt"
	@files=$$($(GO_FILES) | xargs -r gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt would change (run 'make fmt'):"; echo "$$files"; exit 1; fi
	@echo "==> go vet"
	$(GO) vet ./...
	@echo "==> golangci-lint $(GOLANGCI_LINT_VERSION)"
	$(GOLANGCI_LINT) run ./...

fmt: ## format the Go code with gofmt
	$(GO_FILES) | xargs -r gofmt -w

tools: $(GOLANGCI_LINT) ## install pinned golangci-lint into ~/.cache/kite/bin (first run only)

$(GOLANGCI_LINT):
	@GO=$(GO) scripts/install-go-tools.sh $(GOLANGCI_LINT_DIR) \
		github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

# The checker validates the flows (phase 1), runs them with `kite flow test` (phase 2,
# bin/conformance.json) and through the API of a `kite server standalone` it starts
# (phase 3, -server auto: bin/conformance-server.json and .log). CONFORMANCE_FLAGS go
# to it after -server auto: -strict-exec makes execution failures fail the target,
# -exec=false skips phase 2, -server= skips phase 3 (see scripts/conformance/main.go).
conformance: ## validate and run the Kestra corpus in ../shared/conformance (skips when absent)
	@CONFORMANCE_DIR=$(CONFORMANCE_DIR) GO=$(GO) MAKE=$(MAKE) scripts/conformance.sh -server auto $(CONFORMANCE_FLAGS)

fuzz: ## run each Fuzz* test for FUZZTIME (default 30s)
	@FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

bench-core: ## run the Go benchmarks of core/ (expressions, the state machine, parsing)
	$(GO) test -run '^$$' -bench . -benchmem ./core/...

# Issue 9's benchmark: `kite bench` (integration/bench) against a standalone Kite, then against
# one process per role on a real Kafka and OpenSearch of its own (integration/bench/bench.sh):
# the two-task flow at fixed rates up to the first whose p99 passes 1s, five If tasks, ForEach
# of 100 and 1,000 items with the bytes written to Kafka, CPU and RSS of every process and the
# indexer's projection lag. About 10 minutes, so not part of `make test`. Results (JSON, table,
# SVG chart) and the servers' logs go to bin/bench/standalone and bin/bench/distributed;
# BENCH_FLAGS go to kite bench (e.g. BENCH_FLAGS='--rates 1000,2000 --step 20s').
BENCH_OUT ?= bin/bench
BENCH_FLAGS ?=

bench: build ## measure standalone and distributed Kite with kite bench: rates, If, ForEach, CPU/RSS, projection lag (~10 min)
	integration/bench/bench.sh standalone $(BENCH_OUT)/standalone $(BENCH_FLAGS)
	GO=$(GO) integration/kafka/with-kafka.sh integration/opensearch/with-opensearch.sh \
		integration/bench/bench.sh distributed $(BENCH_OUT)/distributed $(BENCH_FLAGS)

# Issue 9's chaos test (integration/chaos): 10,000 executions of a mix of flows (sequential,
# parallel, ForEach, retries, subflows), every role in a process of its own on a real Kafka
# (started by the test, restarted once) and OpenSearch, while a random role process is
# SIGKILLed every few seconds; then it checks on Kafka that nothing was lost or applied twice,
# that the search index matches, and that a side effect happened once per attempt. About 11
# minutes; exits non-zero on any violation. KITE_CHAOS_* variables tune it (integration/chaos/doc.go).
chaos: ## 10,000 executions while role processes are SIGKILLed and the broker restarts; verifies nothing is lost or doubled (~11 min)
	KITE_CHAOS=1 GO=$(GO) integration/opensearch/with-opensearch.sh \
		$(GO) test -count=1 -timeout 25m -run '^TestChaos$$' -v ./integration/chaos

# Issue 7's file benchmark (integration/bench/files_test.go): a file (1 GiB; KITE_BENCH_FILE_SIZE)
# goes through a FILE input, a shell task copying it to an output file, and a download, on a
# `kite server standalone` child process; first with local storage, then with GCS storage on a
# fake-gcs-server of its own. It reports each phase's throughput and the server's peak RSS
# growth (PASS under 64 MiB: the file streams, it never sits whole in memory) to
# bin/bench-files.txt, the server's logs beside it. Needs ~6 GiB free in the temp dir.
BENCH_FILES_OUT := $(CURDIR)/bin/bench-files.txt
BENCH_FILES_ENV := KITE_BENCH=1 KITE_BENCH_OUT=$(BENCH_FILES_OUT)
BENCH_FILES_TEST := $(GO_TEST) -timeout 60m -v ./integration/bench -run

bench-files: ## 1 GiB file through a FILE input, a shell task and a download, local storage and GCS (fake-gcs-server)
	@mkdir -p bin
	@rm -f $(BENCH_FILES_OUT)
	$(BENCH_FILES_ENV) $(BENCH_FILES_TEST) '^TestFiles$$/^local$$'
	$(BENCH_FILES_ENV) GO=$(GO) integration/gcs/with-gcs.sh $(BENCH_FILES_TEST) '^TestFiles$$/^gcs$$'
	@echo; cat $(BENCH_FILES_OUT)

tidy: ## go mod tidy
	$(GO) mod tidy

clean: ## remove build and coverage output (keeps the tool cache)
	rm -rf bin/ coverage.out coverage.html *.coverprofile

# ---- proto ----
# The protobuf API (proto/, buf.yaml, buf.gen.yaml): `make proto` regenerates the Go code
# into proto/gen, which is committed; `make proto-check` fails when that code is stale,
# when buf lint fails, or when a change breaks the API of main. The pinned tools go into
# one directory of $(KITE_CACHE) named by their versions (scripts/install-go-tools.sh),
# first on PATH so that buf.gen.yaml's `local:` plugins are these. Generation is local:
# no remote plugin, no BSR dependency, no network.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.11
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTO_TOOLS := $(KITE_CACHE)/bin/proto-buf-$(BUF_VERSION)-go-$(PROTOC_GEN_GO_VERSION)-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
BUF := PATH="$(PROTO_TOOLS):$$PATH" $(PROTO_TOOLS)/buf

.PHONY: proto proto-check proto-tools

proto: proto-tools ## regenerate the Go code of proto/ into proto/gen (buf lint first)
	$(BUF) lint
	find proto/gen -name '*.pb.go' -delete 2>/dev/null || true
	$(BUF) generate

proto-check: proto-tools ## buf lint, buf breaking against main; fail if proto/gen is stale or does not vet
	@echo "==> buf lint"
	$(BUF) lint
	@echo "==> buf format"
	$(BUF) format --diff --exit-code
	@echo "==> buf breaking against main"
	@if git rev-parse -q --verify main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		$(BUF) breaking --against '.git#branch=main'; \
	else echo "skipped: main has no buf.yaml yet"; fi
	@echo "==> proto/gen is current"
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate --output "$$tmp"; \
	if ! diff -r "$$tmp/proto/gen" proto/gen; then \
		echo "proto/gen is stale: run 'make proto' and commit the result"; exit 1; fi
	@echo "==> go vet proto/gen"
	$(GO) vet ./proto/...

proto-tools: $(PROTO_TOOLS)/buf

$(PROTO_TOOLS)/buf:
	@GO=$(GO) scripts/install-go-tools.sh $(PROTO_TOOLS) \
		github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION) \
		google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION) \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# ---- Helm chart ----
# charts/kite: `make helm-check` lints it and renders it with each value set of
# charts/kite/ci (about a second: cheap enough for `make test`); charts/charttest
# (`go test`) decodes those renderings strictly into the Kubernetes API types and checks
# them, with the same helm. helm is built once with `go install` into $(KITE_CACHE) by
# scripts/install-go-tools.sh. HELM_KUBE_VERSION is the cluster version rendered for: a
# helm built from source assumes v1.20, below the chart's kubeVersion (gRPC probes).
HELM_VERSION := v3.21.4
HELM_DIR := $(KITE_CACHE)/bin/helm-$(HELM_VERSION)
HELM := $(HELM_DIR)/helm
HELM_CHART := charts/kite
HELM_KUBE_VERSION := 1.31.0

.PHONY: helm-check

helm-check: $(HELM) ## lint the Helm chart and render it with every value set of charts/kite/ci
	@echo "==> helm lint $(HELM_CHART)"
	@$(HELM) lint --strict --kube-version $(HELM_KUBE_VERSION) $(HELM_CHART) >/dev/null || \
		$(HELM) lint --strict --kube-version $(HELM_KUBE_VERSION) $(HELM_CHART)
	@for f in $(HELM_CHART)/ci/*-values.yaml; do \
		echo "==> helm lint and template --values $$f"; \
		$(HELM) lint --strict --kube-version $(HELM_KUBE_VERSION) --values "$$f" $(HELM_CHART) >/dev/null || \
			$(HELM) lint --strict --kube-version $(HELM_KUBE_VERSION) --values "$$f" $(HELM_CHART); \
		$(HELM) template kite $(HELM_CHART) --kube-version $(HELM_KUBE_VERSION) --values "$$f" >/dev/null; \
	done

$(HELM):
	@GO=$(GO) scripts/install-go-tools.sh $(HELM_DIR) helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
