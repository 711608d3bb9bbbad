# The two commands a new user runs: `make run` (app on the demo pair) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test bench build-demo evaluate

TEST_STAMP := $(VENV)/.installed-test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

# The test extra in one install (the project and its runtime pins included): one editable build, not two.
$(TEST_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP) $(TEST_STAMP)

# The app listens where the launch config's server_address says (default 127.0.0.1: this machine only);
# a config that cannot be read stops the launch instead of falling back to Streamlit's every-interface default.
run: $(STAMP)
	@addr=$$($(BIN)/python -m analysis.app_support.config server_address) || exit 1; \
	HF_HUB_OFFLINE=1 $(BIN)/streamlit run app.py --server.address "$$addr"

demo: $(STAMP)
	@addr=$$(BRITTLE_CONFIG=configs/demo.toml $(BIN)/python -m analysis.app_support.config server_address) || exit 1; \
	HF_HUB_OFFLINE=1 BRITTLE_CONFIG=configs/demo.toml $(BIN)/streamlit run app.py --server.address "$$addr" --client.toolbarMode=viewer

# Lint, format check and type check first (seconds), then the suite.
test: $(TEST_STAMP)
	@(command -v chromium >/dev/null && command -v pdftoppm >/dev/null) || (apt-get install -y -q chromium poppler-utils >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium poppler-utils >/dev/null)) || echo "chromium / poppler-utils not installable: browser and PDF tests will fail"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy analysis
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --dist worksteal tests

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/generation_throughput.py

build-demo: $(STAMP)
	$(BIN)/python -m analysis build-demo

evaluate: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m analysis evaluate --model demo
