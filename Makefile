# Each target creates or updates .venv, so a fresh clone needs nothing but Python 3.11, pip and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LABGRID_VERSION := 26.0.1
LG_VENV := .venv-labgrid
LG_STAMP := $(LG_VENV)/.installed-$(LABGRID_VERSION)

.PHONY: run test lint bench clean browser labgrid vpico

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

# The slow cases mostly wait (a VM stopped 8 s, a stalled daemon, a suite run in a child
# process): the fault matrix and the suite-level tests (mutants, bisect, real builds) two at a
# time on two workers; then the rest on two workers, a test file to each (a file's tests share
# its module fixtures and run in their order), which halves that stage (10 min -> 5 on 2 cores).
test: $(STAMP) browser labgrid
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 --durations=10 tests/faults tests/suite
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=15 --ignore=tests/faults --ignore=tests/suite

bench: $(STAMP) labgrid
	$(BIN)/python benchmarks/bench_sim.py
	$(BIN)/python benchmarks/bench_suite.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_gate.py
	$(BIN)/python benchmarks/bench_faults.py
	$(BIN)/python benchmarks/bench_doctor.py
	$(BIN)/python benchmarks/bench_backends.py
	$(BIN)/python benchmarks/bench_labgrid.py
	$(BIN)/python benchmarks/bench_vpico.py

# The virtual Pico's emulator (rp2040js, pinned by harness/vpico/package-lock.json). Needs
# Node >= 18 and npm; the RPI_PICO image and the RP2040 bootrom come from the user
# (firmware.image / TSFRIG_VPICO_UF2, TSFRIG_VPICO_BOOTROM).
VPICO_STAMP := harness/vpico/node_modules/.installed

$(VPICO_STAMP): harness/vpico/package-lock.json
	@command -v node >/dev/null 2>&1 || { echo "make vpico: needs Node >= 18 (node not on PATH)"; exit 1; }
	cd harness/vpico && npm ci --no-audit --no-fund --silent
	touch $@

vpico: $(VPICO_STAMP)

clean:
	rm -rf $(VENV) $(LG_VENV) reports/*/ reports/latest
