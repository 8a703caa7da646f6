# Two commands do all set-up on a fresh machine:
#   make demo   core install (no PyTorch), then the demonstration on a synthetic slide
#   make test   everything (training, cluster and test extras), then the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --constraint constraints.txt

.PHONY: demo test lint default-model clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) --editable .
	touch $@

$(VENV)/.all: $(VENV)/.core
	$(PIP) --editable '.[train,cluster,dev]'
	touch $@

demo: $(VENV)/.core
	rm -rf demo_out
	$(BIN)/metasift demo --out demo_out

test: $(VENV)/.all
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -q

# rebuild the bundled model from synthetic pictures (about 90 minutes on 2 cores)
default-model: $(VENV)/.all
	$(BIN)/python examples/make_default_model.py

lint: $(VENV)/.all
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) demo_out .pytest_cache
