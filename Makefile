# fad_d2 entry points. Every target installs what it needs first (scripts/setup.sh is idempotent).
PY := .venv/bin/python

.PHONY: install demo test bench
install:
	@scripts/setup.sh

demo: install  ## the main job on the embedded dataset (see README)
	@scripts/demo.sh

test: install  ## the whole test suite (CPU)
	@$(PY) -m pytest -q -p no:cacheprovider tests

bench: install  ## regenerate the README's benchmark tables
	@$(PY) -m benchmarks.run_all
