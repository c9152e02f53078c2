# One entry point for every routine task. Each target sets up its own virtualenv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## The main job: the quickstart project, ingested.
	$(BIN)/gristmill quickstart demo

test: $(STAMP)  ## The whole test suite (integration tests use the local servers).
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)  ## Benchmarks against their peers; figures go to benchmarks/README.md.
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/ingest_postgres.py
	$(BIN)/python benchmarks/diff_postgres.py
	$(BIN)/python benchmarks/plan_transforms.py

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
