# One command each: `make demo` runs the main job, `make test` runs the whole suite.
# Both create the virtual environment they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The OpenJD conformance suite (run.py and 2023-09/); the environment variable overrides it.
OPENJD_CONFORMANCE_DIR ?= ../shared/openjd-conformance

.PHONY: demo demo-seed lab test conformance bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The package with the extras users install, and the `dev` dependency group (PEP 735), which
# needs pip 25.1 or later (a .venv made before that gets it here).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e '.[examples,lab,dask]' --group dev
	touch $(STAMP)

# The first tutorial notebook, executed headless; prints its final summary table.
demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python examples/execute_notebook.py notebooks/01-first-job.ipynb

# The openjd-sessions README example, with only its import line changed.
demo-seed: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python examples/seed_readme_demo.py

lab: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab notebooks/

test: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Every conformance job test through the suite's own runner; `make conformance ARGS='*let*'`
# runs those matching, ARGS='--verbose' shows the output of the failures.
conformance: $(STAMP)
	$(BIN)/python $(OPENJD_CONFORMANCE_DIR)/run.py --cli "$(CURDIR)/$(BIN)/openjd-notebook run" $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/sessions_vs_reference.py
	$(BIN)/python benchmarks/jobs_vs_openjd_cli.py
	$(BIN)/python benchmarks/dask_vs_local.py
	$(BIN)/python benchmarks/manifest_hashing.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
