# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit sysdeps venv bench clean

# -- environment --------------------------------------------------------------------------------

$(STAMP): pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	@test -x $(BIN)/python || uv venv -q -p $(PYTHON) $(VENV)
	uv pip install -q -p $(BIN)/python -e '.[example]' --group dev
	@touch $(STAMP)

venv: $(STAMP)

# System packages the suite uses for real: redis-server, Chromium (browser tests), oathtool
# (an independent TOTP implementation). Installed with apt-get when missing (CI runs as root).
SYSPKGS := redis-server:redis-server chromium:chromium oathtool:oathtool wrk:wrk
sysdeps:
	@missing=""; for pair in $(SYSPKGS); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

# -- the two commands ---------------------------------------------------------------------------

demo: venv
	PORT=$(PORT) $(BIN)/python -m example_idp

test: venv sysdeps lint typecheck unit

lint: venv
	$(BIN)/ruff check oidc_combinedreg example_idp examples tests benchmarks
	$(BIN)/ruff format --check oidc_combinedreg example_idp examples tests benchmarks

typecheck: venv
	$(BIN)/mypy oidc_combinedreg

unit: venv
	$(BIN)/python -m pytest -q

bench: venv sysdeps
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
