#!/usr/bin/env python
"""Convert torchvision's ImageNet MobileNetV2 checkpoint into a Detectron2 ``MODEL.WEIGHTS`` file.

    python scripts/convert_mobilenet_v2_to_d2.py mobilenet_v2-b0353104.pth pretrained/mobilenet_v2.pkl

The input is a local file (a state dict as ``torch.save(model.state_dict())`` writes it, e.g.
torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1`` download); nothing is downloaded.  The
feature layers the backbone uses (``features.0`` … ``features.17``) are renamed
``backbone.bottom_up.features.<i>.…`` (the FPN models' names; ``--prefix backbone.`` for the bare
backbone); the last 1×1 conv (``features.18``) and the classifier are dropped.  The output is a Detectron2 ``.pkl`` (numpy arrays, ``matching_heuristics`` off).
"""
import argparse
import pickle
import re
import sys

import torch

LAST_BACKBONE_LAYER = 17  # features.18 is the 1×1 conv to 1280 channels, unused by detection


def convert(state_dict, prefix="backbone.bottom_up."):
    """{torchvision key: Tensor} → {Detectron2 key: numpy array} of the backbone's layers."""
    converted = {}
    for key, value in state_dict.items():
        match = re.match(r"features\.(\d+)\.", key)
        if not match or int(match.group(1)) > LAST_BACKBONE_LAYER:
            continue
        converted[prefix + key] = value.detach().cpu().numpy()
    if not converted:
        raise ValueError("no 'features.<i>.' key found: not a torchvision MobileNetV2 state dict")
    return converted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="torchvision MobileNetV2 state dict (.pth)")
    parser.add_argument("output", help="Detectron2 weights file to write (.pkl)")
    parser.add_argument("--prefix", default="backbone.bottom_up.", help="key prefix in the detector")
    args = parser.parse_args(argv)
    state_dict = torch.load(args.source, map_location="cpu", weights_only=True)
    if "state_dict" in state_dict:  # a training checkpoint around the weights
        state_dict = state_dict["state_dict"]
    try:
        model = convert(state_dict, args.prefix)
    except ValueError as e:
        sys.exit(f"error: {args.source}: {e}")
    with open(args.output, "wb") as f:
        pickle.dump({"model": model, "__author__": "torchvision", "matching_heuristics": False}, f)
    print(f"wrote {len(model)} tensors to {args.output}")


if __name__ == "__main__":
    main()
