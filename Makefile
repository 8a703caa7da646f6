# Two commands do all set-up on a fresh machine:
#   make demo   core install (no PyTorch), then the demonstration on a synthetic slide
#   make test   everything (training, cluster and test extras), then the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --constraint constraints.txt

.PHONY: demo test lint default-model clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) --editable .
	touch $@

$(VENV)/.all: $(VENV)/.core
	$(PIP) --editable '.[train,cluster,review,dev]'
	touch $@

demo: $(VENV)/.core
	rm -rf demo_out
	$(BIN)/metasift demo --out demo_out

# the review page's browser test drives Debian's Chromium (Playwright brings no browser here)
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "the review page's browser test needs Chromium: sudo apt-get install chromium"; fi

test: $(VENV)/.all browser
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
