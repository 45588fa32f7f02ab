"""The demo's backbone pre-training: the stand-in for ImageNet weights on the embedded dataset.

The paper searches and retrains from ImageNet-pretrained backbones (§4.1); offline there are no
such weights, so the demo pre-trains its ResNet-18 FPN on ``fad_synth_train`` as an FCOS with a
one-conv head, in two stages: ``configs/Demo/pretrain_fcos_R_18_FPN_demo.yaml`` from scratch
(1,600 iterations at shorter sides 192–256), then ``pretrain_fcos_R_18_FPN_demo_320.yaml`` from
stage 1's final weights (900 iterations at the demo's own 256–320).  It keeps only the backbone
and FPN (``backbone.*``, stored in float16) as :data:`PRETRAINED_WEIGHTS`, the ``MODEL.WEIGHTS``
of every demo config.  The repository ships that file; this module re-creates it:

    python -m fad_d2.demo.pretrain [--output-dir output/demo/pretrain] [--force]

Each stage resumes from its last checkpoint (stage 1 in ``--output-dir``, stage 2 in
``--output-dir``/stage2); a finished stage is not run again.
"""
import argparse
import os
from typing import List

import torch

from ..resources import resource_path
from .steps import Progress, Step

PRETRAIN_CONFIGS = ("configs/Demo/pretrain_fcos_R_18_FPN_demo.yaml",
                    "configs/Demo/pretrain_fcos_R_18_FPN_demo_320.yaml")
"""Stage 1 (from scratch, 192–256 px) and stage 2 (from stage 1, the demo's 256–320 px)."""
PRETRAINED_WEIGHTS = "pretrained/fad_synth_R_18_FPN_demo.pth"
NOMINAL_S = (1600 * 1.0 + 60, 900 * 1.5 + 60)  # per stage on 2 idle cores, evaluation included


def extract_backbone(checkpoint: str, out: str) -> int:
    """Write the ``backbone.*`` tensors of a Detectron2 checkpoint to ``out`` (float16, in a
    ``{"model": ...}`` file that ``DetectionCheckpointer`` loads); returns their count."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    backbone = {k: v.half() if v.is_floating_point() else v for k, v in state.items() if k.startswith("backbone.")}
    if not backbone:
        raise ValueError(f"{checkpoint}: no backbone.* weights in this checkpoint")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    tmp = out + ".tmp"
    torch.save({"model": backbone, "__author__": "fad_d2.demo.pretrain", "matching_heuristics": False}, tmp)
    os.replace(tmp, out)
    return len(backbone)


def pretrain_steps(output_dir: str) -> List[Step]:
    """The two training runs: stage 1 in ``output_dir``, stage 2 in ``output_dir``/stage2
    starting from stage 1's ``model_final.pth``."""
    stage1 = Step("backbone pre-training, stage 1 (stand-in for ImageNet)", "train_net.py",
                  PRETRAIN_CONFIGS[0], output_dir, nominal_s=NOMINAL_S[0])
    stage2 = Step("backbone pre-training, stage 2 (the demo's scales)", "train_net.py", PRETRAIN_CONFIGS[1],
                  os.path.join(output_dir, "stage2"),
                  ["MODEL.WEIGHTS", os.path.join(output_dir, "model_final.pth")], nominal_s=NOMINAL_S[1])
    return [stage1, stage2]


def ensure_pretrained_backbone(output_dir: str, device: str, force: bool = False) -> str:
    """The path of :data:`PRETRAINED_WEIGHTS` (:func:`fad_d2.resources.resource_path`), pre-training
    it first when missing (or ``force``: then it is written under the current directory)."""
    path = resource_path(PRETRAINED_WEIGHTS)
    if os.path.isfile(path) and not force:
        return path
    steps = pretrain_steps(output_dir)
    progress = Progress("pretrain", steps)
    for step in steps:
        progress.run(step, device)
    n = extract_backbone(os.path.join(steps[-1].output_dir, "model_final.pth"), path)
    print(f"[pretrain] {n} backbone tensors written to {path}", flush=True)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="output/demo/pretrain")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--force", action="store_true", help=f"re-create {PRETRAINED_WEIGHTS} even if it exists")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ensure_pretrained_backbone(os.path.abspath(args.output_dir), device, args.force)


if __name__ == "__main__":
    main()
