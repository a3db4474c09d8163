# Two entry points; both use the project's virtualenv (.venv) by default.
#   make reproduce   train the four tutorial presets into the MLflow store and write
#                    docs/reproduction.md (about 5-10 min on 2 cores; MNIST row skipped
#                    without <data_dir>/mnist)
#   make test        the default test suite (fast; no full-length reproductions)
#   make reproduction-tests   the full-length reproductions as tests (pytest -m reproduction)
PYTHON ?= .venv/bin/python

.PHONY: reproduce test reproduction-tests

reproduce:
	$(PYTHON) -m mlplab reproduce --tutorials

test:
	$(PYTHON) -m pytest

reproduction-tests:
	$(PYTHON) -m pytest -m reproduction
