# Two commands on a fresh machine: `make demo`, then `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean bench bench-quick system-deps compiled

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The package's byte code, written also where PYTHONDONTWRITEBYTECODE is set (as on CI's
# machines): every kernel and engine the tests start imports the package, and compiling its
# sources again took each one 0.15 s of CPU (an engine's start: 0.32 s, 0.18 s compiled).
compiled: $(STAMP)
	$(PY) -m compileall -q remote_magics

demo: $(STAMP) compiled
	$(PY) -m remote_magics.demo

test: $(STAMP) system-deps compiled
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=25

# Debian packages the tests drive for real: OpenSSH (ssh targets, a real sshd on 127.0.0.1)
# and Chromium (the JupyterLab browser test, driven by Playwright; never a downloaded browser).
SYSTEM_DEPS := /usr/sbin/sshd /usr/bin/ssh /usr/bin/chromium

system-deps:
	@missing=""; for f in $(SYSTEM_DEPS); do [ -x $$f ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing openssh-server openssh-client chromium (missing:$$missing)"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      openssh-server openssh-client chromium; \
	  else \
	    echo "make test needs$$missing: install the Debian packages openssh-server," \
	      "openssh-client and chromium (or your system's equivalents), then run it again."; \
	    exit 1; \
	  fi; \
	fi

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

# Benchmarks against the peers; the table is printed and written to benchmarks/RESULTS.md.
bench: $(BENCH_STAMP)
	$(PY) -m benchmarks

bench-quick: $(BENCH_STAMP)
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) build *.egg-info
