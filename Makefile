# Quick start: `make demo` and `make test`. Each sets up .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   := /usr/share/datasets/fashion-mnist
# Benchmarks unset the OpenBLAS overrides that slow NumPy on some machines.
NOBLAS := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE

.PHONY: demo test bench steps data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installs are recorded in stamp files so that repeated runs skip them.
$(VENV)/.cli: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[cli]'
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# Fashion-MNIST from Debian's package when it is missing and we may install it;
# otherwise convblocks looks in $$CONVBLOCKS_DATA, ~/.cache/convblocks, then downloads.
data:
	@if [ ! -d $(DATA) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

demo: $(VENV)/.cli data
	$(BIN)/convblocks train

steps: $(VENV)/.cli
	$(BIN)/convblocks steps

test: $(VENV)/.test data
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.test
	$(NOBLAS) $(BIN)/convblocks bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
