# MyNumber Vault — the two commands a new user needs: `make test` and `make run`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MYNUMBER_HOME ?= $(CURDIR)/instance

.PHONY: install system-deps test scan run lint format bench clean manual

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 以上が必要です"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the PDFs and browser tests need (Pango, a Japanese font, chromium).
system-deps:
	@bash scripts/system-deps.sh

# The suite runs on every core (pytest-xdist); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto
test: install system-deps scan
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

# Scanners: lint, security lint (every finding left is reviewed on its line with
# `# nosec BXXX: reason`), and known vulnerabilities of the installed packages (skipped with a
# message when the vulnerability database cannot be reached; a finding fails).
scan: install
	$(BIN)/ruff check .
	$(BIN)/bandit -r app public_form -c pyproject.toml -q
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/dep_audit.py

# `init` asks, once, who the instance speaks for (client, operator, sender, desk phone and
# e-mail) when run from a terminal; elsewhere give MYNUMBER_CLIENT_NAME … as variables
# (README). `run` serves both apps and sends the mail itself (no worker needed).
run: install
	$(BIN)/mynumber init
	$(BIN)/mynumber run $(RUN_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/artifacts

# Import/export at scale against plaintext COPY on PostgreSQL (not a test; figures in README).
bench: install
	$(BIN)/python bench/import_export.py

# サービス利用マニュアル: screenshots from the running app (the browser test), then the PDF.
manual: install system-deps
	$(BIN)/pytest tests/manual -q -p no:cacheprovider
	$(BIN)/mynumber manual build --out docs/manual/manual.pdf
