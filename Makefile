# The README's commands. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where torch comes from. Here `torch==2.13.0` resolves to a local CPU wheel; elsewhere use
# PyTorch's CPU index: make TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=

.PHONY: setup run ask test test-fast test-corpora lint model index chromium axe clean load audit

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 $(TORCH_PIP_ARGS)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(STAMP)

model: setup
	$(BIN)/ampere-qa model install

# The web page on http://127.0.0.1:7860 (builds the index first if it is missing).
run: model
	$(BIN)/python app.py

ask: model
	$(BIN)/ampere-qa ask "Qui dirige Ampere ?"

# Browser tests drive Debian's Chromium; Playwright never downloads a browser here.
chromium:
	@test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium)

# axe-core, the accessibility checker the browser tests inject (package.json; npm's lock file).
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	@command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q npm)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

axe: $(AXE)

test: setup chromium $(AXE)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not corpora"

# The external corpora's quality floors (tests/test_corpora.py): ~5 min, left out of `make test`
# to keep CI well under 30 minutes.
test-corpora: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m corpora

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration and not browser and not slow"

lint: setup
	$(BIN)/ruff check src tests scripts app.py
	$(BIN)/mypy

index: model
	$(BIN)/ampere-qa build --corpus corpus --index index

# 200 questions from 20 concurrent clients against a fresh `python app.py` (scripts/load_test.py).
load: model
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/load_test.py --start --questions 200 --clients 20

# Known vulnerabilities in the installed packages (needs the PyPI JSON API or OSV reachable).
audit: setup
	$(BIN)/pip install -q pip-audit
	$(BIN)/pip-audit -l

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
