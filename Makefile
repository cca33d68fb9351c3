# Two commands on a fresh machine (Python 3.11+ and pip):
#   make serve   install everything editable into .venv and start the gateway
#   make test    install everything editable into .venv, then ruff, mypy --strict and every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := -e ./core -e ./providers/gemini -e ./providers/codex -e ./providers/qwen -e ./providers/claude
STAMP := $(VENV)/.installed

.PHONY: serve test test-packages lint typecheck bench bench-smoke clean

$(STAMP): core/pyproject.toml $(wildcard providers/*/pyproject.toml) requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/polyrelay serve $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q $(ARGS)

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
	rm -rf $(VENV) .venvs
