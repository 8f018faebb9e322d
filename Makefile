# Tessera — the two commands of the README: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install system-packages run test test-sqlite test-postgres lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# the web UI's browser assets (htmx), pinned by package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# WeasyPrint (PDF print formats, docs/print.md) needs Pango: installed with apt-get when
# missing (Debian, Ubuntu); elsewhere the message says what to install
system-packages:
	@PATH="$$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0' || { \
	  command -v apt-get >/dev/null || { echo "install Pango (libpango) for PDF printing"; exit 1; }; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Pango for WeasyPrint (PDF print formats)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core >/dev/null; }

install: system-packages $(BIN)/.installed node_modules/.installed

# every pack shipped in modules/ (quote_to_cash wires sales, orders and finance together);
# tests/integration/test_demo_all_packs.py loads the same demo
DEMO_PACKS = contacts,inventory,sales,orders,finance,quote_to_cash
# the demo's e-mails (the welcome e-mail of a won deal) are .eml files in demo/mail, not sent
DEMO_MAIL = mail: {transport: folder, path: mail}

## run: install, create a demo instance on SQLite with every pack, migrate, load demo data,
## serve on :8000 (e-mails land in demo/mail as .eml files). A demo/ made by an older `make run` (fewer packs) gets the missing packs
## installed (its records are kept); `make clean` removes it to start afresh.
run: install
	test -f demo/tessera.yaml || $(BIN)/tessera init demo --modules $(DEMO_PACKS)
	grep -q quote_to_cash demo/tessera.yaml || (cd demo && ../$(BIN)/tessera module install quote_to_cash --yes)
	grep -q '^mail:' demo/tessera.yaml || echo "$(DEMO_MAIL)" >> demo/tessera.yaml
	cd demo && ../$(BIN)/tessera migrate --admin-password tessera-demo && ../$(BIN)/tessera demo && \
		../$(BIN)/tessera serve --host $(HOST) --port $(PORT)

# one pytest process per core (pytest-xdist; PYTEST_WORKERS=0: one process), and the 20
# slowest tests listed at the end, to keep an eye on the suite's time
PYTEST_WORKERS ?= auto
PYTEST = $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=20

## test: lint and types, then the whole suite on SQLite and on PostgreSQL
test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(PYTEST)

test-sqlite: install
	$(PYTEST) --db sqlite

test-postgres: install
	$(PYTEST) --db postgresql

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check engine metadata runtime cli
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.api_throughput

clean:
	rm -rf $(VENV) node_modules demo .pytest_cache .mypy_cache .ruff_cache
