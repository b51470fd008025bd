# desktop-chat: the two commands are `make run` and `make test`; `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PYTHON

.DEFAULT_GOAL := help
.PHONY: help system install check lint format test test-fast run demo bench chaos devstack-up devstack-down devstack-status package package-check clean

help:
	@echo "make run        set everything up, start the local stack and the app"
	@echo "make test       set everything up and run the whole test suite"
	@echo "make check      lint, format check, type check, import contracts"
	@echo "make demo       like run, plus a second window signed in as bob"
	@echo "make bench      run the benchmarks, results in bench/results/"
	@echo "make chaos      the fault matrix and a 10-minute soak (~20 min; CHAOS_ARGS=--quick: ~6 min)"
	@echo "make install    create .venv with the project and its dev tools"
	@echo "make system     install the Debian packages (as root)"
	@echo "make format     apply ruff's formatting and safe fixes"
	@echo "make devstack-up / devstack-down / devstack-status"
	@echo "make package    build dist/desktop-chat_<version>_<arch>.deb (PyInstaller bundle inside)"
	@echo "make package-check  (root) lintian, apt install the .deb, run it as a user, purge it"

system:
	@scripts/system-deps.sh

$(VENV)/.installed: pyproject.toml scripts/venv.sh
	@scripts/venv.sh

# The official JavaScript client for tests/js (run by tests/integration/realtime/test_supabase_js.py),
# installed from the committed lockfile where Node is there; npm rewrites this file on every install.
JS_DEPS := tests/js/node_modules/.package-lock.json
$(JS_DEPS): tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/js && npm ci --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm not found: the supabase-js tests need Node.js 20+ with npm (without Node they are skipped)"; \
	fi

install: $(VENV)/.installed

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: system install $(JS_DEPS)
	$(BIN)/python -m pytest

run: system install
	$(BIN)/python -m devstack up
	$(BIN)/python -m desktop_chat --dev-stack

demo: system install
	$(BIN)/python -m devstack up
	$(BIN)/python -m desktop_chat --dev-stack --demo

bench: system install
	$(BIN)/python -m bench

# Not part of `make test`: real faults against a throwaway stack; exits non-zero while any cell loses,
# duplicates or heals later than 10 s. CHAOS_ARGS: --quick, --no-soak, --cells a,b (python -m bench.chaos -h).
chaos: system install
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

devstack-up: system install
	$(BIN)/python -m devstack up

devstack-down: install
	$(BIN)/python -m devstack down

devstack-status: install
	$(BIN)/python -m devstack status

package: system install
	$(BIN)/python packaging/linux/build_deb.py

# Installs and purges the package on this machine: CI's last step, or a root shell on a Debian 12 machine.
package-check: package
	@scripts/system-deps.sh package
	packaging/linux/install_check.sh "$$($(BIN)/python packaging/linux/build_deb.py --print-path)" \
		"desktop-chat $$($(BIN)/python -c 'import desktop_chat; print(desktop_chat.__version__)')"

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache tests/artifacts tests/js/node_modules

.DEFAULT:
	@echo "make: there is no target '$@'. Run 'make help' for the list." >&2
	@exit 2
