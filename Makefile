# fusionlab: `make train` and `make test` each set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch comes through this pinned file (the CPU wheel); pyproject.toml only states a range.
TORCH_PIN ?= requirements/torch-cpu.txt
STAMP := $(VENV)/.installed-stamp
ARGS ?=
# the suite runs in this many processes, one torch thread each (more threads than cores stalls torch)
TEST_WORKERS ?= 2

.PHONY: install train test test-fast test-slow test-all lint bench docs clean

$(STAMP): pyproject.toml $(TORCH_PIN)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(TORCH_PIN) -r $(TORCH_PIN) -e ".[dev,all]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install fusionlab with its dev tools

train: $(STAMP)  ## train the default job (CNN + GRU fused by a gated unit on MNIST-1D)
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## lint, then every test (CI runs this; the whole suite's budget is 10 minutes on 2 cores)
	$(VENV)/bin/ruff check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=25 $(ARGS)

test-fast: $(STAMP)  ## lint, then the tests without the slow end-to-end tier (for quick local iterations)
	$(VENV)/bin/ruff check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow" --durations=25 $(ARGS)

test-slow: $(STAMP)  ## the slow end-to-end tier alone: export of every preset, predict/estimator runs, launchers
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m slow --durations=25 $(ARGS)

test-all: test  ## the same as make test (kept for old command lines)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)  ## overhead benchmark (prints ratios)
	$(PY) scripts/bench_overhead.py

docs: $(STAMP)  ## regenerate the option YAMLs generated from classes, then the README's option table from conf/
	$(PY) scripts/gen_option_files.py
	$(PY) scripts/config_table.py --write README.md

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
