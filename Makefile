# `make test` is the one command that runs the whole suite on a fresh machine (it installs what it needs).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test install prism postgres man clean

test: install prism postgres
	$(PY) -m pytest -q -n 2

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# Prism (the contract tier's mock server) needs Node; without Node the tier skips and says why.
prism:
	@if command -v npm >/dev/null 2>&1; then \
	  [ -x .prism/node_modules/.bin/prism ] || npm install --silent --no-audit --no-fund --prefix .prism @stoplight/prism-cli@5; \
	else echo "npm not found: the contract tier will be skipped"; fi

# The PostgreSQL store's tests start a throwaway server from Debian's packaged binaries; CI runs as root and
# installs them here. Elsewhere (no root, no apt-get) those tests skip and say why.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL server binaries not found: the PostgreSQL tests will be skipped"; fi

man: install
	$(PY) -m oaicli.cli.manpages man

clean:
	rm -rf $(VENV) .prism
