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

.PHONY: install train test test-slow test-all lint bench docs clean

$(STAMP): pyproject.toml $(TORCH_PIN)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(TORCH_PIN) -r $(TORCH_PIN) -e ".[dev,all]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install fusionlab with its dev tools

train: $(STAMP)  ## train the default job (CNN + GRU fused by a gated unit on MNIST-1D)
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## lint, then the test suite without the slow end-to-end tier (CI's 10-minute budget)
	$(VENV)/bin/ruff check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow" --durations=25 $(ARGS)

test-slow: $(STAMP)  ## the slow end-to-end tier: export of every preset x format, predict/estimator runs, launchers
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m slow --durations=25 $(ARGS)

test-all: $(STAMP)  ## lint, then every test
	$(VENV)/bin/ruff check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=25 $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)  ## overhead benchmark (prints ratios)
	$(PY) scripts/bench_overhead.py

docs: $(STAMP)  ## regenerate the option YAMLs generated from classes, then the README's option table from conf/
	$(PY) scripts/gen_option_files.py
	$(PY) scripts/config_table.py --write README.md

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
