# fad_d2 entry points. Every target installs what it needs first (scripts/setup.sh is idempotent).
PY := .venv/bin/python

.PHONY: install demo test bench bench-gpu study study-sized pretrain
install:
	@scripts/setup.sh

demo: install  ## the main job on the embedded dataset (see README)
	@scripts/demo.sh

test: install  ## the whole test suite (CPU)
	@$(PY) -m pytest -q -p no:cacheprovider tests

bench: install  ## regenerate the README's benchmark tables
	@$(PY) -m benchmarks.run_all

bench-gpu: install  ## the GPU check: RepShare block and search step, fp32 and AMP, on CUDA (~5 min on one GPU)
	@$(PY) -m benchmarks.gpu_check

study: install  ## searched vs random vs stock heads, n = 3 each (~90 min on 2 cores; not in CI)
	@$(PY) -m benchmarks.search_quality

study-sized: install  ## stock, searched (n = 3) and random heads at the searched heads' size (n = 6) (~2.5 h on 2 cores)
	@$(PY) -m benchmarks.search_quality --arms stock sized searched --sized-params 0.75 0.92 --seeds 3 \
		--arm-seeds sized=6 --work-dir output/study_sized --results-dir benchmarks/results/sized

pretrain: install  ## re-create the demo's pre-trained backbone (pretrained/fad_synth_R_18_FPN_demo.pth; two stages, ~55 min)
	@$(PY) -m fad_d2.demo.pretrain --force
