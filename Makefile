# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit sysdeps venv bench clean e2e-deps i18n-extract i18n-update i18n-compile screenshots

# -- environment --------------------------------------------------------------------------------

$(STAMP): pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	@test -x $(BIN)/python || uv venv -q -p $(PYTHON) $(VENV)
	uv pip install -q -p $(BIN)/python -e '.[example,all]' --group dev
	@touch $(STAMP)

venv: $(STAMP)

# System packages the suite uses for real: redis-server, Chromium (browser tests), oathtool
# (an independent TOTP implementation). Installed with apt-get when missing (CI runs as root).
# PostgreSQL (the postgres store's tests start their own server): Debian keeps its binaries in
# /usr/lib/postgresql/<version>/bin, off PATH, so it is looked for there.
SYSPKGS := redis-server:redis-server chromium:chromium oathtool:oathtool wrk:wrk
sysdeps:
	@missing=""; for pair in $(SYSPKGS); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1 \
	  || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

# axe-core for the browser accessibility test, pinned in tests/e2e/axe (package-lock.json), installed
# there with the machine's npm; skipped quietly when npm is missing (the test then says what to run).
AXE_DIR := tests/e2e/axe
$(AXE_DIR)/node_modules/.installed: $(AXE_DIR)/package.json $(AXE_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd $(AXE_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the accessibility test needs it (apt-get install npm)"; fi

e2e-deps: $(AXE_DIR)/node_modules/.installed

# -- translations (docs/localization.md) ---------------------------------------------------------
# The pages read the .po catalogs at run time; compiling is optional (it checks them, and a .mo
# newer than its .po is used instead). tests/web/test_web_i18n.py fails when a msgid is missing.
CATALOGS := oidc_combinedreg/web/translations
POT      := $(CATALOGS)/messages.pot

i18n-extract: venv
	$(BIN)/pybabel -q extract -F babel.cfg --project oidc-combinedreg --no-location --sort-output \
	  -k InvalidInput:2 --msgid-bugs-address "" -c "Translators:" -o $(POT) oidc_combinedreg

i18n-update: i18n-extract
	$(BIN)/pybabel -q update -i $(POT) -d $(CATALOGS) --no-fuzzy-matching --ignore-obsolete

i18n-compile: venv
	$(BIN)/pybabel compile -d $(CATALOGS) --statistics

# -- the two commands ---------------------------------------------------------------------------

demo: venv
	PORT=$(PORT) $(BIN)/python -m example_idp

test: venv sysdeps e2e-deps lint typecheck unit

lint: venv
	$(BIN)/ruff check oidc_combinedreg example_idp examples tests benchmarks
	$(BIN)/ruff format --check oidc_combinedreg example_idp examples tests benchmarks

typecheck: venv
	$(BIN)/mypy oidc_combinedreg
	$(BIN)/mypy --strict example_idp

unit: venv
	$(BIN)/python -m pytest -q

# docs/screenshots/*.png (shown in docs/screens.md): the screens test writes them only when asked.
# A Japanese font keeps the language chooser's 日本語 readable (installed when missing, as root).
screenshots: venv sysdeps e2e-deps
	@fc-list :lang=ja | grep -q . || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq fonts-ipafont-gothic >/dev/null; } \
	  || echo "no Japanese font: 日本語 shows as boxes (apt-get install fonts-ipafont-gothic)"
	COMBINEDREG_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_screens.py

bench: venv sysdeps
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
