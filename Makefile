# Entry points; all use the project's virtualenv (.venv) by default.
#   make reproduce           train the four tutorial presets into the MLflow store and write
#                            outputs/reproduction.md (about 5-10 min on 2 cores; the MNIST row
#                            is skipped without <data_dir>/mnist)
#   make docs-reproduction   the same, writing the tracked docs/reproduction.md (then copy its
#                            table into the README); run it where MNIST is present
#   make test                the default test suite (fast; no full-length reproductions)
#   make reproduction-tests  the full-length reproductions as tests (pytest -m reproduction)
PYTHON ?= .venv/bin/python

.PHONY: reproduce docs-reproduction test reproduction-tests

reproduce:
	$(PYTHON) -m mlplab reproduce --tutorials

docs-reproduction:
	$(PYTHON) -m mlplab reproduce --tutorials --output docs/reproduction.md

test:
	$(PYTHON) -m pytest

reproduction-tests:
	$(PYTHON) -m pytest -m reproduction
