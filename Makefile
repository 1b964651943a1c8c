# Two commands for a newcomer: `make demo` (the FSDD recipe end to end) and `make test`.
# They install everything (training, export, tests, pictures); `pip install .` alone serves exported models.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean lock check-latest

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip -q
	$(VENV)/bin/pip install -c constraints.txt -e '.[train,dev,views,synth,lexicon]'
	touch $(STAMP)

demo: $(STAMP)
	PATH=$(abspath $(VENV))/bin:$$PATH bash recipes/fsdd/run.sh

test: $(STAMP)
	$(PY) -m pytest -q tests

# the linter's rules are in pyproject.toml ([tool.ruff]); .ci/run runs this after the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# what the newest releases change (report only), and refreshing the lock from them
check-latest:
	bash tools/check_latest.sh

lock:
	bash tools/check_latest.sh --lock

clean:
	rm -rf $(VENV) .venv-base .venv-latest exp build
