# reelflow: the two commands of the README's quick start, and the checks behind them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# LiteLLM's proxy, for the gateway test, in a venv of its own: its pins are not reelflow's.
LITELLM_VENV := .venv-litellm
LITELLM_STAMP := $(LITELLM_VENV)/.installed
LITELLM := litellm[proxy]==1.108.7

.PHONY: demo test lint unit integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

## demo: render deployments/plans/demo.yaml on the embedded sandbox posing as OpenRouter (Veo 3.1 Fast, with sound)
## into ./out, whatever keys the shell holds; it ends with the lines that render the same plan for real
DEMO_OUTPUT ?= file://./out
demo: $(STAMP)
	env -u OPENROUTER_API_KEY -u OPENROUTER_BASE_URL -u REELFLOW_API_KEY -u REELFLOW_BASE_URL -u REELFLOW_PROVIDER \
		$(BIN)/reelflow run deployments/plans/demo.yaml --output $(DEMO_OUTPUT)

## test: lint, type-check, then the whole test suite
test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check reelflow flows tasks deployments tests bench
	$(BIN)/mypy

$(LITELLM_STAMP):
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/pip install --quiet "$(LITELLM)"
	touch $(LITELLM_STAMP)

# Three test files at a time (on two cores: most of a test's time is spent waiting for jobs, servers and
# subprocesses); each file's tests stay together in one worker, with its module-wide fixtures.
unit: $(STAMP) $(LITELLM_STAMP)
	$(BIN)/pytest -m "not postgres" -n 3 --dist loadfile

## integration: the fleet on PostgreSQL (needs Debian's postgresql; .ci/run installs it)
integration: $(STAMP)
	$(BIN)/pytest -m postgres

bench: $(STAMP)
	$(BIN)/python -m compileall -q reelflow flows tasks deployments bench  # warm, as any install that ran once
	-$(BIN)/python -m bench.sandbox_latency
	-$(BIN)/python -m bench.prepare
	-$(BIN)/python -m bench.waiting
	-$(BIN)/python -m bench.startup
	-$(BIN)/python -m bench.throughput
	-$(BIN)/python -m bench.download_memory
	-$(BIN)/python -m bench.overhead
	-$(BIN)/python -m bench.reel
	-$(BIN)/python -m bench.qa
	-$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) $(LITELLM_VENV) out .pytest_cache .mypy_cache .ruff_cache
