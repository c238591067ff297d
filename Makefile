# tether — the two set-up commands: `make demo` and `make test` (root, fresh Debian 12).
# Both install what is missing and are safe to run twice.

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
DEBS  := python3 python3-venv openvswitch-switch openvswitch-vtep openvswitch-common etcd-server iproute2 procps udhcpc

.PHONY: demo test lint check bench deps debs venv clean

demo: deps
	$(VENV)/bin/tether demo

test: deps lint
	$(PY) -m pytest -q -p no:cacheprovider
	$(PY) benchmarks/api_bulk.py --smoke
	$(PY) benchmarks/bulk_bounds.py --smoke
	$(PY) benchmarks/ovsdb_transact.py --smoke
	$(PY) benchmarks/vtep_push.py --smoke
	$(PY) benchmarks/mac_inventory.py --smoke
	$(PY) benchmarks/agent_flows.py --smoke
	$(PY) benchmarks/restart.py --smoke

lint: deps
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: deps
	$(PY) benchmarks/api_bulk.py
	$(PY) benchmarks/bulk_bounds.py
	$(PY) benchmarks/ovsdb_transact.py
	$(PY) benchmarks/vtep_push.py
	$(PY) benchmarks/mac_inventory.py
	$(PY) benchmarks/agent_flows.py
	$(PY) benchmarks/restart.py

deps: debs venv

# apt only when a package is missing; `apt-get update` once, before the first install.
debs:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(PY) || /usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info
