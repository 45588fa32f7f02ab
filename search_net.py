#!/usr/bin/env python
"""Search a FAD architecture (paper §3.2) for a detector config containing FAD search modules.

    python search_net.py --config-file configs/Search/search_fad_fcos_R_50_FPN_voc.yaml
    python search_net.py --config-file CFG --resume          # continue a killed search
    python search_net.py --config-file CFG --num-gpus 4      # DDP: α gradients averaged too

Writes OUTPUT_DIR/genotype_final.json (+ .png), genotype_iter_*.json, alpha_history.json,
alpha_evolution.png, search_split.json and checkpoints; its last line names the genotype file
and the train_net.py command that trains it.
"""
import os

from detectron2.engine import default_argument_parser
from detectron2.utils import comm

import fad_d2  # noqa: F401  (registers fad_d2's modules and datasets)
from fad_d2.engine.setup import launch_main, setup_cfg
from fad_d2.search import FINAL_GENOTYPE, SearchTrainer


def train_command(cfg, genotype_path):
    """The ``train_net.py`` command that trains the derived genotype (``SEARCH.TRAIN_CONFIG``)."""
    key = "MODEL.FAD_MASK.GENOTYPE" if cfg.MODEL.ROI_MASK_HEAD.NAME == "FADMaskHead" else "MODEL.FAD.GENOTYPE"
    train_cfg = cfg.SEARCH.TRAIN_CONFIG or "<a training config with the same head>"
    return f"python train_net.py --config-file {train_cfg} {key} {genotype_path}"


def main(args):
    cfg = setup_cfg(args)
    trainer = SearchTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    if comm.is_main_process():
        path = os.path.join(cfg.OUTPUT_DIR, FINAL_GENOTYPE)
        print(f"genotype: {path} | train it: {train_command(cfg, path)}", flush=True)


if __name__ == "__main__":
    launch_main(main, default_argument_parser().parse_args())
