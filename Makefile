# fad_d2 entry points. Every target installs what it needs first (scripts/setup.sh is idempotent).
PY := .venv/bin/python

.PHONY: install demo test bench bench-gpu study pretrain
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

study: install  ## searched (α and perturbation rule) vs equal-cost random vs stock heads (many hours on 2 cores; resumable)
	@$(PY) -m studies.search_quality --arms stock searched perturbed matched noise --seeds 6 --arm-seeds matched=12 \
		--work-dir output/study --results-dir studies/results/converged

pretrain: install  ## re-create the demo's pre-trained backbone (pretrained/fad_synth_R_18_FPN_demo.pth; two stages, ~55 min)
	@$(PY) -m fad_d2.demo.pretrain --force
