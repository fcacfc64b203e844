# rlrepro: every target sets itself up (a virtual environment with the pinned requirements) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ALGO ?= ppo
BUDGET ?= paper
WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
# pytest workers for make test (pytest-xdist); the tests marked serial (Ray's cluster) run after, in one process
TEST_WORKERS ?= $(WORKERS)
ARGS ?=
# the image installs requirements.txt only (no test tools)
REQUIREMENTS ?= requirements-dev.txt
COMPARE ?=

.PHONY: help install test lint replicate replicate-ppo replicate-trpo replicate-npg replicate-sac replicate-sac-v1 replicate-ddpg \
	replicate-awr replicate-qprop report bench gpu-check regress readme clean-venv docker-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r $(REQUIREMENTS)
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create $(VENV) with the pinned requirements (torch 2.13.0 CPU)

lint: $(STAMP)  ## ruff (lint and format), mypy and hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

test: lint  ## the test suite (numeric, learning, CLI end to end): one pytest worker per core, then the Ray tests alone
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial"
	$(BIN)/python -m pytest -m serial

replicate: $(STAMP)  ## ALGO=ppo BUDGET=paper|quick: run the paper grid (ours and SB3), then the report
	$(BIN)/rlrepro replicate $(ALGO) --budget $(BUDGET) --workers $(WORKERS) $(COMPARE) $(ARGS)

replicate-ppo: ALGO = ppo
replicate-ppo: replicate  ## PPO's grid: 7 MuJoCo envs x 3 seeds x 1M steps (BUDGET=quick: classic control; crosscheck: 10 seeds)

replicate-trpo: ALGO = trpo
replicate-trpo: replicate  ## TRPO's grid (ours and sb3-contrib), Baselines' 1M-step settings

replicate-npg: ALGO = npg
replicate-npg: COMPARE = --with-comparators
replicate-npg: replicate  ## NPG's grid (ours only: no SB3 counterpart), and the TRPO runs its report compares with

replicate-sac: ALGO = sac
replicate-sac: replicate  ## SAC's grid, ours and SB3 (BUDGET=crosscheck: 3 envs x 200k steps)

replicate-sac-v1: ALGO = sac-v1
replicate-sac-v1: replicate  ## SAC v1 (fixed temperature, V network), ours and SB3 (BUDGET=crosscheck)

replicate-ddpg: ALGO = ddpg
replicate-ddpg: replicate  ## DDPG's grid, ours and SB3 (BUDGET=crosscheck: 3 envs x 200k steps)

replicate-awr: ALGO = awr
replicate-awr: COMPARE = --with-comparators
replicate-awr: replicate  ## AWR's grid and the PPO/TRPO/SAC runs its report compares with (SAC 1M: hours each)

replicate-qprop: ALGO = qprop
replicate-qprop: COMPARE = --with-comparators
replicate-qprop: replicate  ## Q-Prop's grid (conservative) and the TRPO runs its report compares with

gpu-check: $(STAMP)  ## on a CUDA machine: the GPU tests, then SAC/DDPG ours vs SB3 on the GPU (eager and CUDA-graphed)
	$(BIN)/python -m pytest tests/test_gpu.py
	for a in sac ddpg; do \
	  $(BIN)/rlrepro bench $$a --env Hopper-v5 --steps 6000 --device cuda --out results/bench/$$a-Hopper-v5-cuda.json && \
	  $(BIN)/rlrepro bench $$a --env Hopper-v5 --steps 6000 --device cuda --cuda-graph \
	    --out results/bench/$$a-Hopper-v5-cuda-graph.json || exit 1; \
	done

docker-check:  ## build the CPU image (docker, or buildah as root) and run replicate, train and report inside it
	docker/check.sh

report: $(STAMP)  ## ALGO=ppo BUDGET=paper|quick: write reports/ALGO[-quick]/ from the stored runs
	$(BIN)/rlrepro report $(ALGO) --budget $(BUDGET)

bench: $(STAMP)  ## env steps/s of ours vs SB3 (PPO, TRPO, SAC, DDPG; Hopper-v5, same hyperparameters); 8 PPO seeds batched
	$(BIN)/rlrepro bench ppo --env Hopper-v5 --steps 61440 --out results/bench/ppo-Hopper-v5.json
	$(BIN)/rlrepro bench trpo --env Hopper-v5 --steps 61440 --out results/bench/trpo-Hopper-v5.json
	$(BIN)/rlrepro bench ppo --env Hopper-v5 --steps 20480 --seed-parallel 8 --out results/bench/ppo-Hopper-v5-seed-parallel-8.json
	$(BIN)/rlrepro bench sac --env Hopper-v5 --steps 6000 --out results/bench/sac-Hopper-v5.json
	$(BIN)/rlrepro bench ddpg --env Hopper-v5 --steps 6000 --out results/bench/ddpg-Hopper-v5.json

regress: $(STAMP)  ## ALGO=ppo: is the current code a significant regression against results/regress/ALGO-baseline.csv?
	$(BIN)/rlrepro regress $(ALGO) --workers $(WORKERS) $(ARGS)

readme: $(STAMP)  ## regenerate the README's results tables from reports/*/summary.md
	$(BIN)/python -m experiments.tools.readme

clean-venv:
	rm -rf $(VENV)
