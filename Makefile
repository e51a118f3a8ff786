# Two commands on a fresh machine: `make demo`, then `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean bench bench-quick system-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m remote_magics.demo

test: $(STAMP) system-deps
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
