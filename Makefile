# One entry point for every routine task. Each target sets up its own virtualenv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean browser reliability

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## The main job: the quickstart project, ingested.
	$(BIN)/gristmill quickstart demo

browser:  ## Debian's Chromium, for the tests that open HTML reports (installed when missing).
	@command -v chromium >/dev/null 2>&1 || ( command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core >/dev/null ) \
		|| echo "chromium is not installed: the report tests that need it will skip (fail under CI)"

# The feature tests again in two more time zones (the session's follows TZ, PostgreSQL's
# PGTZ): UTC+5:30, and UTC-3:30 with daylight saving. The Dask builds run the same
# point-in-time SQL per partition as the local ones, so they run once, in the first pass.
TZ_PASS := -n 2 -q tests/features --ignore=tests/features/test_training_set_dask.py
test: $(STAMP) browser  ## The whole test suite (integration tests use the local servers).
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15
	TZ=Asia/Kolkata PGTZ=Asia/Kolkata $(BIN)/python -m pytest $(TZ_PASS)
	TZ=America/St_Johns PGTZ=America/St_Johns $(BIN)/python -m pytest $(TZ_PASS)

# tests/streams/test_reliability.py at the issue's size: 20 SIGKILLs of gristmill stream
# during 200,000 changes and 200,000 events (make test runs it at a tenth of that).
reliability: $(STAMP)  ## The kill tests at full size (several minutes).
	GRISTMILL_RELIABILITY=full $(BIN)/python -m pytest -q tests/streams/test_reliability.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)  ## Benchmarks against their peers; figures go to benchmarks/README.md.
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/ingest_postgres.py
	$(BIN)/python benchmarks/diff_postgres.py
	$(BIN)/python benchmarks/plan_transforms.py
	$(BIN)/python benchmarks/profile_table.py
	$(BIN)/python benchmarks/online_features.py
	$(BIN)/python benchmarks/training_set.py
	$(BIN)/python benchmarks/training_set_feast.py
	$(BIN)/python benchmarks/train_overhead.py
	$(BIN)/python benchmarks/serve_latency.py
	$(BIN)/python benchmarks/batch_predict.py

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
