# Two commands for a fresh machine:  `make demo` (main job) and `make test` (test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.procvid-installed
DEMO_OUT ?= demo_out

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/procvid demo --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
