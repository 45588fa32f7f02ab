#!/usr/bin/env python
"""Train and evaluate a detector with fad_d2's modules (FCOS, RetinaNet, Mask R-CNN, FAD heads).

    python train_net.py --config-file configs/Demo/fcos_R_18_FPN_demo.yaml MODEL.DEVICE cpu
    python train_net.py --config-file CFG --eval-only MODEL.WEIGHTS output/model_final.pth
    python train_net.py --config-file CFG --num-gpus 8
"""

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser

import fad_d2  # noqa: F401  (registers fad_d2's modules and datasets)
from fad_d2.engine.setup import launch_main, setup_cfg
from fad_d2.engine.trainer import Trainer


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    launch_main(main, default_argument_parser().parse_args())
