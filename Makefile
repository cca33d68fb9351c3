# Two commands on a fresh machine (Python 3.11+ and pip):
#   make serve   install everything editable into .venv and start the gateway
#                (the demo over simulated upstreams unless ARGS or $POLYRELAY_CONFIG names a config)
#   make test    install everything editable into .venv, then ruff, mypy --strict and every test
#   make test-clients  the real coding CLIs (from npm) against the demo gateway
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := -e ./core -e ./providers/gemini -e ./providers/codex -e ./providers/qwen -e ./providers/claude
STAMP := $(VENV)/.installed

.PHONY: serve test test-clients test-packages lint typecheck bench bench-smoke clean

$(STAMP): core/pyproject.toml $(wildcard providers/*/pyproject.toml) requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/polyrelay serve $(or $(ARGS),$(if $(POLYRELAY_CONFIG),,--demo))

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q $(ARGS)

# The real CLIs (Claude Code, Codex CLI, Gemini CLI, Qwen Code) at the versions pinned in
# clients/package-lock.json, installed into the git-ignored clients/node_modules (needs node + npm).
CLIENTS := clients/node_modules/.installed

$(CLIENTS): clients/package.json clients/package-lock.json
	cd clients && npm install --no-audit --no-fund
	touch $(CLIENTS)

test-clients: $(STAMP) $(CLIENTS)
	$(BIN)/pytest -q clients $(ARGS)

# Each provider alone in a fresh venv (.venvs/<name>) with only core: proves `pip install ./core ./providers/<name>`.
test-packages:
	PYTHON=$(PYTHON) scripts/test-packages $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy --strict on core/src and providers/*/src ([tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke $(ARGS)

clean:
	rm -rf $(VENV) .venvs clients/node_modules
