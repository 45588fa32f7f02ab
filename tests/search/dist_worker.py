"""Worker of the 2-process search test (importable, so that ``launch`` can spawn it)."""
import os

import torch
from detectron2.utils import comm

import fad_d2  # noqa: F401
from fad_d2.search import SearchTrainer
from tests.search.utils import tiny_search_cfg


def search_and_save_alpha(output_dir, num_iter):
    """Run ``num_iter`` search iterations; each rank saves its α to ``alpha_rank<r>.pt``."""
    cfg = tiny_search_cfg(output_dir, "SOLVER.MAX_ITER", str(num_iter), "SEARCH.DERIVE_PERIOD", "1000",
                          "SOLVER.IMS_PER_BATCH", "4")
    trainer = SearchTrainer(cfg)
    trainer.train()
    alphas = {g.name: g.alpha.detach().clone() for g in trainer.groups}
    torch.save(alphas, os.path.join(output_dir, f"alpha_rank{comm.get_rank()}.pt"))
