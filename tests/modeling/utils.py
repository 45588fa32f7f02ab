"""Helpers for model tests: configs loaded the way train_net.py loads them, random inputs."""
import torch
from detectron2.structures import Boxes, Instances

from fad_d2.engine.setup import load_cfg


def cpu_cfg(path, *opts, check=True):
    """Config of ``path`` + overrides, on the CPU, with no pretrained weights."""
    return load_cfg(path, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts], check=check)


def detection_batch(num_images=2, height=128, width=160, num_classes=80, seed=0, masks=False):
    """A list of Detectron2 input dicts: random images with 3 random boxes each (and masks)."""
    g = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(num_images):
        image = torch.randint(0, 256, (3, height, width), generator=g).float()
        xy = torch.rand(3, 2, generator=g) * torch.tensor([width * 0.6, height * 0.6])
        wh = 16 + torch.rand(3, 2, generator=g) * torch.tensor([width * 0.35, height * 0.35])
        inst = Instances((height, width))
        inst.gt_boxes = Boxes(torch.cat([xy, xy + wh], dim=1))
        inst.gt_classes = torch.randint(0, num_classes, (3,), generator=g)
        if masks:
            from detectron2.structures import BitMasks

            m = torch.zeros(3, height, width, dtype=torch.bool)
            for i, (x0, y0, x1, y1) in enumerate(inst.gt_boxes.tensor.round().long().tolist()):
                m[i, y0:y1, x0:x1] = True
            inst.gt_masks = BitMasks(m)
        batch.append({"image": image, "instances": inst, "height": height, "width": width})
    return batch


def tiny_opts(*opts):
    """Overrides shrinking a demo config to test size (64-96 px inputs, c′ = 32, M = 1)."""
    return ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "96", "INPUT.MIN_SIZE_TEST", "64",
            "INPUT.MAX_SIZE_TEST", "96", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0", *opts]
