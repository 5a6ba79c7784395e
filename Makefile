# gamut: `make train` trains the default experiment, `make test` runs the tests.
# Both create .venv and install gamut (editable) with its pinned dependencies on first use;
# `make install` does only that. The tools (`python scripts/<tool>.py`, `gamut-<tool>`) need it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
LOG_DIR ?= logs

.PHONY: install train test lint format test-slow test-all test-gpu dashboard benchmark clean-logs help

help:
	@echo "make install    create .venv and install gamut (editable) with its dependencies and tools (gamut-*)"
	@echo "make train      train the default experiment (experiment=quickstart) on the built-in shapes data"
	@echo "make lint       ruff: lint and check the formatting (make test runs it first)"
	@echo "make format     ruff: format the tree and apply the safe lint fixes"
	@echo "make test       run the test suite (tests marked slow excluded; under 15 min on 2 CPU cores)"
	@echo "make test-slow  run only the tests marked slow (DDP, sweeps, kill -9 resume, browser, learning)"
	@echo "make test-all   run every test"
	@echo "make test-gpu   run the CUDA tests (marker gpu; they skip without a CUDA GPU)"
	@echo "make dashboard  serve the MLflow UI for $(LOG_DIR)/mlflow.db on http://$(HOST):$(PORT)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) -m src.train experiment=quickstart $(ARGS)

test: $(STAMP) lint
	$(PY) -m pytest -q -m "not slow" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

test-gpu: $(STAMP)
	$(PY) -m pytest -q -s -m gpu $(ARGS)

dashboard: $(STAMP)
	mkdir -p $(LOG_DIR)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(abspath $(LOG_DIR))/mlflow.db --host $(HOST) --port $(PORT)

benchmark: $(STAMP)
	$(PY) scripts/benchmark.py stylegan2 $(ARGS)

clean-logs:
	rm -rf $(LOG_DIR)
