# mexlive: `make demo` and `make test` create or refresh .venv, then run.
# PyTorch comes from pip's default index unless TORCH_PIP_ARGS names another: on Linux x86_64
# that is the CUDA build (a few GB of NVIDIA libraries; it runs on the CPU too), on macOS and
# Windows the CPU build. The CPU build alone, on a fresh .venv:
#   make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# TORCH_SPEC picks the version. A .venv that can already import torch keeps its build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mexlive-installed
PYTEST_ARGS ?=

.PHONY: demo test lint format bench soak venv clean

venv: $(STAMP)

# Rebuilt when pyproject.toml changes; a no-op otherwise (idempotent).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# Exactly the README's sample command (benchmarks/readme_samples.py DEMO_ARGS; a test holds
# them equal): the synthetic face, 750 frames, the same events on every machine.
demo: $(STAMP)
	$(VENV)/bin/mexlive --source synthetic:5 --headless --no-realtime --max-frames 750

# pytest exits 5 when it collects nothing: that is a failure of the suite, said plainly.
# `make test` installs nothing system-wide: it says which browser tests will skip and how to
# enable them; the 15 slowest tests are printed at the end.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@test -x /usr/bin/chromium || echo "make test: /usr/bin/chromium not found: the browser" \
	  "tests (tests/stream/ui/test_preview.py) will skip; run 'make browser-deps' as root to enable them"
	@$(PY) -m pytest --durations=15 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Debian's Chromium for the browser tests of the preview (tests/stream/ui/test_preview.py); run
# it by name, as root (.ci/run installs the same package). Never a dependency of `test`.
.PHONY: browser-deps
browser-deps:
	@if [ -x /usr/bin/chromium ]; then echo "chromium already installed: /usr/bin/chromium"; \
	elif [ "$$(id -u)" != 0 ]; then echo "make browser-deps: run as root (apt-get install chromium)" >&2; exit 1; \
	elif ! command -v apt-get >/dev/null; then echo "make browser-deps: no apt-get here; install Chromium at /usr/bin/chromium" >&2; exit 1; \
	else apt-get update -qq && apt-get install -y -qq chromium >/dev/null && echo "chromium installed"; fi

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m benchmarks.bench_capture

# The long soak (the README's table): MINUTES=30 by default, plot in docs/soak.png.
MINUTES ?= 30
soak: $(STAMP)
	nice -n 10 $(PY) -m benchmarks.soak --minutes $(MINUTES) --every 6 --plot docs/soak.png

clean:
	rm -rf $(VENV) .pytest_cache
