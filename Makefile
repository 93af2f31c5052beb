# The two commands of the README:  make demo  and  make test.
# Both create ./.venv on first use; nothing else needs installing by hand.

VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel; an open range would fetch a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: demo test test-fast screenshots system-packages clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/tuneloop demo

system-packages:
	scripts/ensure-system-packages

# The whole suite, slow learning and browser tests included (CI runs exactly this).
test: $(VENV)/.installed system-packages
	$(PY) -m pytest

# Everything but the slow tests, for a quick check while editing.
test-fast: $(VENV)/.installed system-packages
	$(PY) -m pytest -m "not slow"

# The README's pictures: the browser tests, writing their screenshots into docs/.
screenshots: $(VENV)/.installed system-packages
	TUNELOOP_SCREENSHOTS=docs/screenshots $(PY) -m pytest -m browser

clean:
	rm -rf $(VENV) var tests/artifacts
