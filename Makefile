# One-word commands; each does its own set-up on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint shape install clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[demo,dev]'
	touch $(STAMP)

install: $(STAMP)

# The shape of the code: layers and no import cycles (import-linter contracts in pyproject.toml),
# dependencies that match the imports (deptry), no dead code (vulture + vulture_whitelist.py).
shape: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/deptry crmsync
	$(BIN)/vulture

# The console's browser tests drive Debian's chromium (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium is missing and could not be installed: the console's browser tests will fail"

test: $(STAMP) shape browser
	$(BIN)/ruff check crmsync tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/crmsync demo

bench: $(STAMP)
	$(BIN)/python -m bench.run

lint: $(STAMP) shape
	$(BIN)/ruff check crmsync tests bench
	$(BIN)/ruff format --check crmsync tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
