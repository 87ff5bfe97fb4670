# ragctx — `make run` and `make test` are the two commands a new user needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
# No model hub here: never ask it (ragctx.toml, written by `make install`, names the offline
# copies of the models and of tiktoken's files).
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
	RAGAS_DO_NOT_TRACK=true
THREADS := OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
BENCH_DATASETS ?= scifact nfcorpus

.PHONY: help install browser run ingest test test-slow lint fmt bench bench-scale eval clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, exactly this version: the CPU build on disk; any other spec pulls CUDA.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev,bench,eval]'
	$(PY) -m service.offline > ragctx.toml
	touch $(STAMP)

install: $(STAMP) browser ## create .venv and install ragctx with its dev tools

# Debian's chromium + chromium-driver for tests/review/test_browser.py (Playwright cannot fetch
# browsers here). Never fatal: where apt cannot run, that test skips and says why.
browser: ## headless chromium and chromium-driver for the browser test (apt-get, when missing)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q --no-install-recommends chromium chromium-driver \
		|| { apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver; } \
		|| echo "could not apt-get install chromium chromium-driver: the browser test will skip"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get install -y -q --no-install-recommends chromium chromium-driver \
		|| echo "could not apt-get install chromium chromium-driver: the browser test will skip"; \
	else echo "chromium/chromium-driver missing and apt-get cannot run here: the browser test will skip"; fi

data/keys.toml: data/keys.sample.toml
	cp data/keys.sample.toml data/keys.toml

ingest: install ## ingest the sample corpus in data/docs into the embedded store
	$(OFFLINE) $(VENV)/bin/ragctx ingest data/docs/acme --collection docs --tenant acme
	$(OFFLINE) $(VENV)/bin/ragctx ingest data/docs/globex --collection docs --tenant globex
	$(OFFLINE) $(VENV)/bin/ragctx stats --collection docs

run: ingest data/keys.toml ## install, ingest data/docs, serve POST /v1/context on 127.0.0.1:8000
	$(OFFLINE) $(THREADS) $(VENV)/bin/ragctx serve --host 127.0.0.1 --port 8000

lint: install ## ruff + mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install ## format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint ## lint, then the fast test suite (real store, real models, real HTTP)
	$(OFFLINE) $(THREADS) $(PY) -m pytest -q

test-slow: install ## the slow tests (the assembler invariants over many more inputs)
	$(OFFLINE) $(THREADS) $(PY) -m pytest -q -m slow

bench: install ## benchmarks: ingest, assembler (evidence and whole prompt), HTTP service, encoder backends + query cache, trace recording, compare.py (ragctx vs references); under bench/results/
	$(OFFLINE) $(THREADS) $(PY) bench/bench_ingest.py --json-out bench/results/ingest.json
	$(OFFLINE) $(THREADS) $(PY) bench/bench_assembler.py --json-out bench/results/assembler.json
	$(OFFLINE) $(THREADS) $(PY) bench/bench_prompt.py --json-out bench/results/prompt.json
	$(OFFLINE) $(THREADS) $(PY) bench/bench_service.py --json-out bench/results/service.json
	$(OFFLINE) $(THREADS) $(PY) bench/bench_encoders.py --json-out bench/results/encoders.json
	$(OFFLINE) $(THREADS) $(PY) bench/bench_traces.py --json-out bench/results/traces.json
	$(if $(DATASET),$(OFFLINE) $(ONE_THREAD) $(PY) bench/compare.py --threads 1 --dataset $(DATASET),for d in $(BENCH_DATASETS); do $(OFFLINE) $(ONE_THREAD) $(PY) bench/compare.py --threads 1 --dataset $$d || exit 1; done)
	$(PY) bench/update_readme.py

bench-scale: install ## hybrid query latency at 10k, 100k, 1M synthetic points; bench/results/scale.*
	$(OFFLINE) $(PY) bench/scale.py --sizes 10000,100000,1000000
	$(PY) bench/update_readme.py

eval: install ## SciFact quality report per stage, then the gate against the kept baseline
	$(OFFLINE) $(THREADS) $(VENV)/bin/ragctx eval ../shared/benchdata/scifact
	$(OFFLINE) $(VENV)/bin/ragctx eval gate --baseline eval/baselines/scifact.json

clean: ## remove the venv and the local store
	rm -rf $(VENV) .ragctx ragctx.toml
