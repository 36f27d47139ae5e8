# Airlock's one entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv test test-unit lint fmt demo demo-down bench bench-compare bench-corpus bench-instructions bench-webhook fuzz pss-agreement manifests chart-lint clean eval-detectors eval-detectors-external

include hack/cluster.mk

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create .venv and install Airlock with its dev tools

test-unit: $(STAMP) ## fast tests only: no cluster binaries, no network (no helm, control plane, node or registry)
	$(BIN)/pytest -m 'not e2e and not node and not chart and not registry' -q

test: $(STAMP) cluster-bins ## all tests: unit, webhook, end-to-end, and the chart on a real node (root)
	$(BIN)/pytest -q

lint: $(STAMP) ## ruff (lint + format check), mypy strict, import layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(STAMP) cluster-bins ## the main job: Airlock on a local control plane, applying example workloads
	$(BIN)/python hack/demo.py up

demo-down: $(STAMP) ## stop the demo's webhook, controller and local control plane
	$(BIN)/python hack/demo.py down

bench: $(STAMP) ## benchmarks (about 8 minutes); results are recorded in bench/RESULTS.md
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_scan.py --no-checkov
	$(BIN)/python bench/compare_scanners.py

bench-compare: $(STAMP) ## airlock scan vs kube-score and checkov, side by side (builds/installs them once into ~/.cache/airlock)
	$(BIN)/python bench/compare_scanners.py

bench-corpus: $(STAMP) ## generate the 88 MB scan-bench corpus into ~/.cache/airlock/bench-corpus (once)
	$(BIN)/python bench/gen_corpus.py

eval-detectors: $(STAMP) ## credential detectors: recall / false positives per corpus and placement, cost per value
	$(BIN)/python bench/eval_detectors.py --record

eval-detectors-external: $(STAMP) ## credential detectors out of sample: gitleaks' rule tests (fetched with go) -> bench/RESULTS.md
	@command -v go >/dev/null || { echo "eval-detectors-external: needs go (the Go module proxy serves gitleaks)"; exit 2; }
	$(BIN)/python bench/eval_external.py --record

bench-instructions: $(STAMP) ## engine: instructions per evaluation under valgrind (noise-free A/B of the hot path)
	@command -v valgrind >/dev/null || apt-get install -y -q valgrind
	$(BIN)/python bench/engine_instructions.py

bench-webhook: $(STAMP) ## webhook reviews/s, latency and RSS over TLS (bench/RESULTS.md)
	$(BIN)/python bench/bench_webhook.py

fuzz: $(STAMP) ## 20,000 hostile and valid requests plus slow clients against the webhook; summary in bench/RESULTS.md
	$(BIN)/python bench/fuzz_webhook.py

bench-apiserver: $(STAMP) cluster-bins ## Pod-creation latency through the API server with and without Airlock
	$(BIN)/python bench/bench_apiserver_latency.py

bench-audit: $(STAMP) ## a full audit pass over 10,000 pods: time and memory
	$(BIN)/python bench/bench_audit.py

pss-agreement: $(STAMP) ## airlock scan vs upstream Pod Security fixtures, every version and level (bench/RESULTS.md)
	$(BIN)/python bench/pss_agreement.py --record

manifests: $(STAMP) cluster-bins ## sync chart copies (CRDs, dashboard, alerts) and re-render manifests/install.yaml
	$(BIN)/python charts/render_install.py

chart-lint: $(STAMP) cluster-bins ## helm lint the chart; fail if chart copies or install.yaml are stale
	$$(bash hack/build-bins.sh --print-dir | tail -1)/helm lint --strict charts/airlock
	$(BIN)/python charts/render_install.py --check

clean: ## remove the venv and caches (not the cluster binaries)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
