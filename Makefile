# fad_d2 entry points. Every target installs what it needs first (scripts/setup.sh is idempotent).
PY := .venv/bin/python

.PHONY: install demo test test-fast bench profile bench-gpu study pretrain
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

study: install  ## searched (α and perturbation rule) vs equal-cost random vs stock heads (many hours on 2 cores; resumable)
	@$(PY) -m studies.search_quality --arms stock searched perturbed matched noise paper --seeds 6 --arm-seeds matched=12 \
		--work-dir output/study --results-dir studies/results/converged

pretrain: install  ## re-create the demo's pre-trained backbone (pretrained/fad_synth_R_18_FPN_demo.pth; two stages, ~55 min)
	@$(PY) -m fad_d2.demo.pretrain --force
