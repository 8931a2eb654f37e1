# Each target creates or updates .venv, so a fresh clone needs nothing but Python 3.11, pip and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LABGRID_VERSION := 26.0.1
LG_VENV := .venv-labgrid
LG_STAMP := $(LG_VENV)/.installed-$(LABGRID_VERSION)

.PHONY: run test lint bench clean browser labgrid

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tsfrig run

# Headless Chromium for the report tests (Debian package; needs root, as on CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "make: could not install chromium; browser tests will be skipped"; }

# labgrid for the shared-lab tests, in its own venv: its pyserial fork and its pytest plugin
# stay out of tsfrig's. Its exporter serves serial ports through Debian's ser2net (needs root,
# as on CI); the tests fail, never skip, without them.
$(LG_STAMP):
	test -d $(LG_VENV) || $(PY) -m venv $(LG_VENV)
	$(LG_VENV)/bin/pip install -q 'labgrid==$(LABGRID_VERSION)'
	touch $@

labgrid: $(LG_STAMP)
	@command -v ser2net >/dev/null 2>&1 || test -x /usr/sbin/ser2net || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ser2net >/dev/null; }

test: $(STAMP) browser labgrid
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: $(STAMP) labgrid
	$(BIN)/python benchmarks/bench_sim.py
	$(BIN)/python benchmarks/bench_suite.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_gate.py
	$(BIN)/python benchmarks/bench_faults.py
	$(BIN)/python benchmarks/bench_doctor.py
	$(BIN)/python benchmarks/bench_backends.py
	$(BIN)/python benchmarks/bench_labgrid.py

clean:
	rm -rf $(VENV) $(LG_VENV) reports/*/ reports/latest
