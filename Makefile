# reelflow: the two commands of the README's quick start, and the checks behind them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

## demo: render deployments/plans/demo.yaml against the embedded sandbox into ./out
demo: $(STAMP)
	$(BIN)/reelflow run deployments/plans/demo.yaml --output file://./out

## test: lint, type-check, then the whole test suite
test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check reelflow flows tasks deployments tests bench
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not postgres"

bench: $(STAMP)
	-$(BIN)/python bench/sandbox_latency.py
	-$(BIN)/python bench/prepare.py
	-$(BIN)/python bench/waiting.py
	-$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
