# fad_d2 entry points. Every target installs what it needs first (scripts/setup.sh is idempotent).
PY := .venv/bin/python

.PHONY: install demo test test-fast bench profile bench-gpu study study-sized pretrain
install:
	@scripts/setup.sh

demo: install  ## the main job on the embedded dataset: search, stock vs searched head, COCO eval
	@scripts/demo.sh

test: install  ## the whole test suite (CPU; CI's command)
	@$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: install  ## the suite without the end-to-end runs (tests marked slow): under 2 min on 2 cores
	@$(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests

bench: install  ## speed and memory: rewrite benchmarks/results/ and the tables docs/benchmarks.md includes
	@$(PY) -m benchmarks.run_all
	@$(PY) scripts/docs_includes.py

profile: install  ## where a search iteration's time goes, by module and pass (benchmarks/results/search_profile.*)
	@$(PY) -m benchmarks.search_profile
	@$(PY) scripts/docs_includes.py

bench-gpu: install  ## the GPU check: RepShare block and search step, fp32 and AMP, on CUDA (~5 min on one GPU)
	@$(PY) -m benchmarks.gpu_check

study: install  ## searched vs random vs stock heads, n = 3 each (~90 min on 2 cores; not in CI)
	@$(PY) -m benchmarks.search_quality

study-sized: install  ## stock, searched (n = 3) and random heads at the searched heads' size (n = 6) (~2.5 h on 2 cores)
	@$(PY) -m benchmarks.search_quality --arms stock sized searched --sized-params 0.75 0.92 --seeds 3 \
		--arm-seeds sized=6 --work-dir output/study_sized --results-dir benchmarks/results/sized

pretrain: install  ## re-create the demo's pre-trained backbone (pretrained/fad_synth_R_18_FPN_demo.pth; two stages, ~55 min)
	@$(PY) -m fad_d2.demo.pretrain --force
