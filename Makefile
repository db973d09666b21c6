# Two entry points, as the README's quick start says:
#   make build   set up a CPU-only environment and build Inception-v4 (the main job)
#   make test    set up the test environment (timm, torchvision, fvcore, Graphviz) and run
#                ruff and the whole test suite; exits non-zero on any failure
# Each keeps its own virtual environment, rebuilt when pyproject.toml changes.

PYTHON ?= python3
BUILD_VENV := .venv-build
TEST_VENV := .venv-test
# torch 2.13.0 is the CPU build this machine kind keeps on disk (about 1 GB); timm and
# torchvision need 2.14.1 with torchvision 0.29.1 (also on disk, a 5.6 GB CUDA build).
BUILD_TORCH := torch==2.13.0
TEST_TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: build test fast lint graphviz postgres figures models clean

build: $(BUILD_VENV)/.installed
	$(BUILD_VENV)/bin/archdsl build specs/inception_v4.yaml
	@echo
	@echo "archdsl is installed in $(BUILD_VENV). To type 'archdsl' in this shell:"
	@echo "    . $(BUILD_VENV)/bin/activate && archdsl --help"
	@echo "(or run $(BUILD_VENV)/bin/archdsl directly)"

test: $(TEST_VENV)/.installed graphviz postgres
	$(TEST_VENV)/bin/ruff check .
	$(TEST_VENV)/bin/yamllint --strict specs
	$(TEST_VENV)/bin/python -m pytest -p no:cacheprovider --durations=10

# The quick subset for development: everything but the tests marked slow (those that build,
# port or trace every network); CI runs the whole suite with `make test`.
fast: $(TEST_VENV)/.installed graphviz
	$(TEST_VENV)/bin/ruff check .
	$(TEST_VENV)/bin/python -m pytest -m "not slow"

lint: $(TEST_VENV)/.installed
	$(TEST_VENV)/bin/ruff check .

# $(call venv,DIR,TORCH,EXTRAS): a fresh environment with that torch and archdsl installed.
# Installs show pip's progress: torch is about 1 GB (the CPU build); the test environment's
# torch + torchvision are a 5.6 GB CUDA build, about 4 minutes on this machine kind.
define venv
	@echo "== $(1): creating the virtual environment"
	$(PYTHON) -m venv $(1)
	$(1)/bin/pip install --progress-bar on --upgrade pip
	@echo "== $(1): installing $(2) (the largest download; see the Makefile's header)"
	$(1)/bin/pip install --progress-bar on $(2)
	@echo "== $(1): installing archdsl (editable) with the '$(3)' extra"
	$(1)/bin/pip install --progress-bar on -e ".[$(3)]"
	touch $(1)/.installed
endef

$(BUILD_VENV)/.installed: pyproject.toml setup.py
	$(call venv,$(BUILD_VENV),$(BUILD_TORCH),torch)

$(TEST_VENV)/.installed: pyproject.toml setup.py
	$(call venv,$(TEST_VENV),$(TEST_TORCH),test)

# The diagrams need the `dot` program (Debian's graphviz package); install it when missing.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "installing Graphviz (dot)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; }
	@dot -V

# The search's scale-out test starts a throw-away PostgreSQL server (initdb + pg_ctl in a
# temporary folder); install Debian's postgresql package when they are missing. Debian keeps
# them in /usr/lib/postgresql/<version>/bin, off PATH: the test looks there too.
postgres:
	@{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { \
	  echo "installing PostgreSQL (initdb, pg_ctl)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null || command -v pg_ctl

figures: $(TEST_VENV)/.installed graphviz
	$(TEST_VENV)/bin/python tools/make_figures.py

models: $(TEST_VENV)/.installed
	$(TEST_VENV)/bin/python tools/models_doc.py

clean:
	rm -rf $(BUILD_VENV) $(TEST_VENV) .pytest_cache .ruff_cache
