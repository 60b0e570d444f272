# Growthwheel — set-up and everyday commands. Everything runs inside ./.venv.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
DATA   ?= growthwheel-data
PYTEST_ARGS ?=

.PHONY: install install-dev system-deps demo test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24"

# Re-install only when pyproject.toml changes (idempotent).
$(VENV)/.base-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	@touch $@ $(VENV)/.base-installed

install: $(VENV)/.base-installed  ## create .venv and install Growthwheel

install-dev: $(VENV)/.dev-installed

# What the tests need from Debian: Java (Spark), Chromium and CJK fonts (browser tests).
# Installed when missing and we are root; otherwise we say what to install.
APT_NEEDS = $(if $(shell command -v java 2>/dev/null),,openjdk-17-jre-headless) \
            $(if $(wildcard /usr/bin/chromium),,chromium) \
            $(if $(wildcard /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc),,fonts-noto-cjk)

system-deps:
	@if [ -n "$(strip $(APT_NEEDS))" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_NEEDS) >/dev/null; \
	  else echo "missing Debian packages: $(APT_NEEDS) (sudo apt-get install $(APT_NEEDS))"; exit 1; fi; \
	fi

demo: install  ## build the demo shop, run the pipeline, write the review report, serve the console with the worker beside it
	$(BIN)/growthwheel --data-dir $(DATA) demo

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# The suite on two workers, the longest files first (tests/conftest.py: LONGEST_FIRST), then the
# Spark Connect tests in a process of their own.
test: install-dev system-deps lint  ## the whole test suite
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=30 -m "not spark_connect" $(PYTEST_ARGS)
	$(BIN)/python -m pytest --durations=10 -m spark_connect $(PYTEST_ARGS)

bench: install-dev  ## benchmarks (print ratios against a baseline measured in the same run)
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/kpi_bench.py
	$(BIN)/python bench/events_bench.py
	$(BIN)/python bench/clv_bench.py
	$(BIN)/python bench/rfm_bench.py
	$(BIN)/python bench/segment_bench.py
	$(BIN)/python bench/pricing_bench.py
	$(BIN)/python bench/orders_bench.py
	$(BIN)/python bench/orders_bench.py --workers 2
	$(BIN)/python bench/orders_bench.py --store sqlite
	$(BIN)/python bench/crowd_bench.py
	$(BIN)/python bench/experiment_bench.py
	$(BIN)/python bench/cli_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
