# Two entry points: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two cores here: one pytest worker each.
JOBS ?= 2

.PHONY: demo test lint system-deps vectors bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,fast]'
	$(BIN)/python scripts/device_types.py install
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shorewatch demo

system-deps:
	sh scripts/system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n $(JOBS) -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python scripts/device_types.py

vectors: $(STAMP)
	$(BIN)/python -m protocol.vectors

bench: $(STAMP)
	$(BIN)/python bench/codec.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
