# Two commands do everything: `make run` (the app) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.app: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -r requirements-dev.txt
	touch $@ $(VENV)/.app

run: $(VENV)/.app  ## create the virtualenv, install, start the dashboard
	$(BIN)/streamlit run dashboard.py

test: $(VENV)/.dev  ## the whole test suite (browser tests need /usr/bin/chromium)
	$(BIN)/python -m pytest

bench: $(VENV)/.dev  ## speed benchmarks: ratios against baselines measured in the same run
	$(BIN)/python -m benchmarks

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts screenshots
