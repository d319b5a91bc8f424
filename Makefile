# RadGuard: two commands set everything up on a fresh Debian machine.
#   make demo   installs RadGuard and scans a sample "outside CD" (report in demo-out/)
#   make test   installs what the tests need (Python deps + Debian peers) and runs lint, types, tests

SHELL := /bin/bash
# Resolved when used (after the uv target ran): PATH, then pip's --user location, then the module.
UV ?= $(shell command -v uv 2>/dev/null || { test -x "$(HOME)/.local/bin/uv" && echo "$(HOME)/.local/bin/uv"; } || echo "$(PY) -m uv")
PY ?= python3
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

# Debian packages of the real peers the tests run against.
DEBIAN_PACKAGES := dcmtk orthanc orthanc-dicomweb rsyslog rsyslog-gnutls genisoimage xorriso \
	trang dicom3tools tesseract-ocr tesseract-ocr-eng gnutls-bin postgresql openssl nmap \
	util-linux procps clamav

.PHONY: help uv install system-deps demo test lint typecheck pytest bench clean

help:
	@echo "make demo   - install RadGuard and scan the bundled sample outside CD"
	@echo "make test   - install test dependencies (Python + Debian peers) and run all checks"
	@echo "make bench  - run the benchmarks in bench/ (long)"

uv:
	@command -v uv >/dev/null 2>&1 || $(UV) --version >/dev/null 2>&1 || $(PY) -m pip install --quiet uv 2>/dev/null || \
		$(PY) -m pip install --quiet --user --break-system-packages uv 2>/dev/null || \
		{ [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip && \
		  $(PY) -m pip install --quiet --user --break-system-packages uv; } || \
		{ echo "cannot install uv: install it (https://docs.astral.sh/uv/) and run make again" >&2; exit 2; }

install: uv
	$(UV) sync --frozen --compile-bytecode

system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		fi; \
	else echo "not root or no apt-get: install these Debian packages yourself: $(DEBIAN_PACKAGES)"; fi

demo: install
	rm -rf $(DEMO_OUT)
	$(UV) run python -m radguard.samples.demo $(DEMO_OUT)/outside-cd --iso $(DEMO_OUT)/outside-cd.iso
	RADGUARD_HOME=$(abspath $(DEMO_OUT))/home $(UV) run radguard --operator demo media scan \
		$(DEMO_OUT)/outside-cd ; test $$? -le 1
	RADGUARD_HOME=$(abspath $(DEMO_OUT))/home $(UV) run radguard --operator demo media scan \
		$(DEMO_OUT)/outside-cd.iso --format html --output $(DEMO_OUT)/scan-report.html ; test $$? -le 1
	@echo
	@echo "HTML report: $(abspath $(DEMO_OUT))/scan-report.html"
	@echo "Audit journal and store: $(abspath $(DEMO_OUT))/home"

lint: install
	$(UV) run ruff check src tests bench

typecheck: install
	$(UV) run mypy

pytest: install
	$(UV) run pytest $(PYTEST_ARGS)

test: system-deps install lint typecheck pytest

bench: install system-deps
	$(UV) run python bench/scan.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
