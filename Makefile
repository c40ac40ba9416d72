# The two commands of the README: `make book` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENDOR := _vendor/vendor
# Front-end files the offline book serves itself (npm registry packages, pinned).
MATHJAX := mathjax@3.2.2
HTML_MANAGER := @jupyter-widgets/html-manager@1.0.15
REQUIREJS := requirejs@2.3.8

.PHONY: book test lint results vendor setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

vendor: $(VENDOR)/.done

$(VENDOR)/.done: Makefile
	rm -rf .vendor $(VENDOR) && mkdir -p .vendor $(VENDOR)
	cd .vendor && npm pack --silent $(MATHJAX) $(HTML_MANAGER) $(REQUIREJS) >/dev/null
	cd .vendor && for f in *.tgz; do mkdir -p "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}"; done
	cp -r .vendor/mathjax-*/package/es5 $(VENDOR)/mathjax
	cp -r .vendor/jupyter-widgets-html-manager-*/package/dist/. $(VENDOR)/
	cp .vendor/requirejs-*/package/require.js $(VENDOR)/require.js
	touch $@

book: setup vendor
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

lint: setup
	$(VENV)/bin/ruff check reidlib tests benchmarks

test: book lint
	$(PY) -m pytest -n 2 --dist loadfile tests book --nbval-lax --nbval-current-env \
		--ignore-glob='*/train.ipynb' --ignore-glob='*/_build/*'

results: setup
	$(PY) -m reidlib.engine.make_results

clean:
	rm -rf _build .vendor _vendor
