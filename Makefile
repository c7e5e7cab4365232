# mailagent: `make help` lists every target.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mailagent
RUN_DIR ?= $(CURDIR)/.cache/run

##@ General
.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
.PHONY: build
build: ## Build every binary (operator, workload, control-plane CLI)
	$(CARGO) build --workspace --bins

.PHONY: generate
generate: ## Regenerate the CRD YAML in crds/yaml and the chart, docs/reference/crds.md and docs/reference/settings.md, from the Rust types and the contract
	$(CARGO) run -q -p mailagent-crds --bin crdgen -- crds/yaml charts/mailagent-operator/crds --reference docs/reference/crds.md --settings docs/reference/settings.md

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

# Crates that must not link a Kubernetes client: the API types (derive only), the workload and
# the mail domain. `cargo tree -i` fails with "did not match any packages" when it is absent.
NO_KUBE_CLIENT := mailagent-crds mailagent-service mailagent-mail

.PHONY: lint
lint: ## rustfmt check, clippy with warnings as errors, no kube-client in the API crate or the workload
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@for crate in $(NO_KUBE_CLIENT); do \
		if out=$$($(CARGO) tree -e normal -p $$crate -i kube-client 2>&1); then \
			echo "$$crate must not depend on kube-client:"; echo "$$out"; exit 1; \
		fi; \
		grep -q "did not match any packages" <<<"$$out" || { echo "$$out"; exit 1; }; \
		echo "$$crate: no kube-client"; \
	done

.PHONY: control-plane
control-plane: ## Build (once per machine, cached) kube-apiserver from the Go module proxy
	hack/control-plane-build.sh

VERSION := $(shell sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)

.PHONY: node
node: ## Build or install (once per machine, cached) kubelet, kube-scheduler, containerd, runc, CNI plugins, crane, helm
	hack/node-build.sh >/dev/null

.PHONY: images
images: ## OCI images of the operator and the workload without Docker (crane), into .cache/images; the workload profile-guided (hack/pgo-build.sh; PGO=0: plain release)
	hack/image-build.sh

.PHONY: docker-build
docker-build: ## The same images with Docker (hack/docker/Dockerfile); not needed here
	docker build -f hack/docker/Dockerfile --target mailagent --build-arg VERSION=$(VERSION) -t localhost/mailagent:$(VERSION) .
	docker build -f hack/docker/Dockerfile --target mailagent-operator --build-arg VERSION=$(VERSION) -t localhost/mailagent-operator:$(VERSION) .

##@ Test
.PHONY: test
test: test-unit test-integration test-peers test-ops policy-scan test-node ## Every test: unit, real control plane, real protocol peers, production checks, policy scans, the product on a local node

.PHONY: test-unit
test-unit: ## Unit tests (no I/O beyond loopback)
	$(CARGO) test

.PHONY: test-integration
test-integration: control-plane ## Operator tests against a real kube-apiserver + etcd started here
	$(CARGO) build -p mailagent-operator
	$(CARGO) test -p mailagent-tests -- --test-threads=4

.PHONY: e2e
e2e: node ## The product on a real local node (root): operator from the chart, pods, SDK clients, `make run`'s commands
	$(CARGO) build -p mailagent-operator --bins
	$(CARGO) test -p mailagent-tests --test node -- --ignored --test-threads=1 --nocapture
	hack/e2e/run-commands-test.sh

# Debug-profile images: the same code as the release images, built from what the tests already
# compiled (a cold release build would add about 20 minutes); `make e2e` defaults to release.
.PHONY: test-node
test-node: ## make e2e on debug-profile images where this machine can run a node (root, cgroups); elsewhere it says why and skips
	$(CARGO) build -q -p mailagent-tests --bin mailagent-control-plane
	@if reason="$$($${CARGO_TARGET_DIR:-target}/debug/mailagent-control-plane can-run-node)"; then \
		IMAGE_PROFILE=debug $(MAKE) e2e; \
	else \
		echo "test-node: skipped: this machine cannot run a node: $$reason"; \
	fi

.PHONY: test-ops
test-ops: control-plane ## Alert rules (promtool), the chart and docs/gitops against a real API server, Argo CD and Flux health checks
	hack/promtool-test.sh
	hack/manifests-test.sh
	"$$(hack/ops-tools/venv.sh)/bin/python" hack/gitops-test.py docs/gitops/testdata
	"$$(hack/ops-tools/venv.sh)/bin/python" hack/gitops-test.py docs/gitops/testdata-node

.PHONY: policy-scan
policy-scan: ## trivy PSS-restricted (17/17) and checkov (waivers: docs/policy-scans.md) on the chart and the operator's rendered objects
	hack/policy-scan.sh

.PHONY: test-peers
test-peers: ## Interop tests with peers nobody here wrote (MCP/A2A SDKs, Google API emulator)
	@for script in hack/peers/*/run.sh; do [ -x "$$script" ] || continue; echo "==> $$script"; "$$script"; done

##@ Release (docs/runbooks/security.md: preflight, canary, rollout, rollback)
.PHONY: preflight
preflight: lint test-unit test-ops ## The runbooks' release preflight: lint, unit tests, the chart and alert rules against a real API server, then the release images
	hack/image-build.sh

# The API key is read from a file (a client Secret's api-key), never from the command line.
BASE_URL ?=
API_KEY_FILE ?=
MUTATIONS ?=
.PHONY: smoke
smoke: ## The runbooks' canary checks on one agent: make smoke BASE_URL=http://... API_KEY_FILE=FILE [MUTATIONS=on|off]
	hack/smoke.sh "$(BASE_URL)" "$(API_KEY_FILE)" $(if $(MUTATIONS),--mutations $(MUTATIONS))

##@ Run
.PHONY: run
run: ## The product here: a local node, the operator from the chart, the sample MailAgent as a pod (host processes where no node can run)
	hack/run.sh

.PHONY: bench
bench: control-plane ## Benchmarks, each printing ratios against a baseline measured in the same run
	$(CARGO) build --release -p mailagent-operator
	$(CARGO) run --release -p mailagent-tests --bin operator-bench
	binary="$$(hack/pgo-build.sh)"; MAILAGENT_BENCH_BINARY="$$binary" MAILAGENT_BENCH_PYTHON="$$(hack/peers/service/venv.sh)" $(CARGO) bench -p mailagent-service --bench doors
	$(CARGO) bench -p mailagent-service --bench reload
	hack/peers/mail/bench.sh
	$(CARGO) build -q -p mailagent-operator --bins
	$(CARGO) run -q -p mailagent-tests --bin node-bench

# No AddressSanitizer by default: the crate forbids unsafe and the target checks panics and
# redaction, which need none; FUZZ_SANITIZER=address also covers the dependencies' unsafe code, slower.
FUZZ_SECONDS ?= 60
FUZZ_SANITIZER ?= none
.PHONY: fuzz
fuzz: ## Fuzz the header parser (nightly + cargo-fuzz) for FUZZ_SECONDS from mail/fuzz/seeds; a crash fails, its input lands in mail/fuzz/artifacts
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked --version 0.13.2
	mkdir -p mail/fuzz/corpus/unsubscribe_headers
	cd mail && $(CARGO) +nightly fuzz run --sanitizer $(FUZZ_SANITIZER) unsubscribe_headers fuzz/corpus/unsubscribe_headers fuzz/seeds -- \
		-max_total_time=$(FUZZ_SECONDS) -max_len=16384 -rss_limit_mb=2048
